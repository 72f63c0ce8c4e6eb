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

/* The tests answer 1 (yes), 0 (no) or -errno: a marker that cannot be
 * read is never taken for an absent one. */

/* Is dirfd/name a whiteout (char 0/0)?  0 also if it does not exist. */
int sfs_is_whiteout_at(int dirfd, const char *name);

/* Does dirfd hold a ".wh.NAME" marker for name? */
int sfs_has_wh_file(int dirfd, const char *name);

/* Create a whiteout for name in the local dir dirfd (name must not
 * exist).  -errno on failure. */
int sfs_whiteout_create(const struct sfs_layers *l, int dirfd,
			const char *name);

/* Replace an existing local entry dirfd/name with a whiteout, atomically
 * (built in workdir, renamed over).  A directory must be empty in the
 * merged view; whiteouts in it go with it, emptied in workdir. */
int sfs_whiteout_replace(const struct sfs_layers *l, int dirfd,
			 const char *name, bool is_dir, const char *tmpname);

/* Remove the local entry dirfd/name, which hides nothing below.  A
 * directory that still holds whiteouts leaves in one rename to workdir
 * (tmpname), where it is emptied. */
int sfs_remove_at(const struct sfs_layers *l, int dirfd, const char *name,
		  bool is_dir, const char *tmpname);

/* Remove a ".wh.NAME" marker if there is one (before creating NAME). */
void sfs_wh_file_clear(int dirfd, const char *name);

int sfs_is_opaque(const struct sfs_layers *l, int dir_opath_fd);
int sfs_set_opaque(const struct sfs_layers *l, int dir_opath_fd);
/* The same for the directory dirfd/name. */
int sfs_set_opaque_at(const struct sfs_layers *l, int dirfd, const char *name);

/* Does dirfd/name carry the metacopy xattr (a local file whose data is
 * still in a shared layer, copyup.h)? */
int sfs_is_metacopy_at(const struct sfs_layers *l, int dirfd,
		       const char *name);

/* Was dirfd/name marked as having lost its shared data (fsck.h)? */
bool sfs_is_lost_at(const struct sfs_layers *l, int dirfd, const char *name);

/* How many whiteouts and ".wh." markers does a local directory hold (they
 * leave with it when it is removed or replaced; the inode count)? */
int sfs_count_whiteouts(int dir_opath_fd, int *count);
