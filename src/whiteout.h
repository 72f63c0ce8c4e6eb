/* whiteout.h - the markers on layer objects, kernel overlayfs format:
 * whiteouts, opaque directories, metadata-only copies.
 *
 * A whiteout is a char device 0/0 named like the hidden entry; where the
 * local layer does not permit mknod, an empty file ".wh.NAME" is used.
 * Both forms are read in every layer; a ".wh.NAME" marker hides NAME only
 * in the layers below its own.  An opaque directory carries the
 * overlay.opaque="y" xattr (read in both the trusted and user namespaces)
 * and hides everything below it.  A metadata-only copy carries
 * overlay.metacopy (copyup.h).
 */
#pragma once

#include "layers.h"

#include <stdbool.h>
#include <sys/stat.h>

#define SFS_WH_PREFIX ".wh."

static inline bool sfs_is_whiteout_stat(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

static inline bool sfs_is_wh_name(const char *name)
{
	return name[0] == '.' && name[1] == 'w' && name[2] == 'h' &&
	       name[3] == '.';
}

/* Is dirfd/name a whiteout (char 0/0)? */
bool sfs_is_whiteout_at(int dirfd, const char *name);

/* Does dirfd hold a ".wh.NAME" marker for name? */
bool sfs_has_wh_file(int dirfd, const char *name);

/* Create a whiteout for name in the local dir dirfd (name must not
 * exist).  -errno on failure. */
int sfs_whiteout_create(const struct sfs_layers *l, int dirfd,
			const char *name);

/* Replace an existing local entry dirfd/name with a whiteout, atomically
 * (built in workdir, renamed over).  Directories must already be empty
 * of anything but whiteouts. */
int sfs_whiteout_replace(const struct sfs_layers *l, int dirfd,
			 const char *name, bool is_dir, const char *tmpname);

/* Remove a ".wh.NAME" marker if there is one (before creating NAME). */
void sfs_wh_file_clear(int dirfd, const char *name);

bool sfs_is_opaque(const struct sfs_layers *l, int dir_opath_fd);
int sfs_set_opaque(const struct sfs_layers *l, int dir_opath_fd);
/* The same for the directory dirfd/name. */
int sfs_set_opaque_at(const struct sfs_layers *l, int dirfd, const char *name);

/* Was dirfd/name marked as having lost its shared data (fsck.h)? */
bool sfs_is_lost_at(const struct sfs_layers *l, int dirfd, const char *name);

/* Does dirfd/name carry the metacopy xattr (a local file whose data is
 * still in a shared layer, copyup.h)? */
bool sfs_is_metacopy_at(const struct sfs_layers *l, int dirfd,
			const char *name);

/* Empty a local directory that holds only whiteouts (before rmdir);
 * *removed counts the whiteouts removed. */
int sfs_clear_whiteouts(int dir_opath_fd, int *removed);
