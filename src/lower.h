/* lower.h - the stack of shared directories behind a node.
 *
 * A directory node keeps, in n->lowerdirs, an O_PATH fd on each shared
 * directory that merges into it, topmost first, down to the first opaque
 * one (struct sfs_lowerdir, node.h).  This module finds a name in that
 * stack (a whiteout in a layer ends the search), builds the stack of a
 * child directory, and maps a shared directory back to its path inside
 * its layer.  It knows nothing of the local layer.
 */
#pragma once

#include "fs.h"

/* Open dirfd/name as O_PATH and check it is still the object fstatat()
 * saw as *seen (a shared layer may change under us): the fd, -EAGAIN if
 * it changed, -errno. */
int sfs_open_verified(int dirfd, const char *name, const struct stat *seen);

/* Append (fd, layer) to *dirs, creating the array; takes fd.  (The
 * node table frees such arrays: sfs_lowerdirs_free(), node.h.) */
void sfs_lowerdirs_add(GArray **dirs, int fd, int layer);

/* Find name in parent's shared directories from position *i on: 1 and
 * *i, st set where it is; 0 if absent or hidden by a whiteout; -errno. */
int sfs_lower_find(struct sfs_node *parent, const char *name, guint *i,
		   struct stat *st);

/* Is name visible in one of parent's shared directories (so removing or
 * renaming it locally needs a whiteout)?  1, 0 or -errno. */
int sfs_lower_visible(struct sfs_fs *fs, struct sfs_node *parent,
		      const char *name);

/* Collect into *dirs the shared directories named `name` below parent's
 * shared directories from position `from` on, until an opaque one or a
 * non-directory.  0 or -errno. */
int sfs_collect_lowerdirs(struct sfs_fs *fs, struct sfs_node *parent,
			  const char *name, guint from, GArray **dirs);

/* Path of a shared-layer object relative to its layer root ("/a/b"), from
 * its fd; NULL if it is not below that root. */
char *sfs_lower_path(struct sfs_fs *fs, int fd, int layer);

/* Path of n's shared object inside its layer ("/a/b"), found through its
 * parent's shared directory of that layer; NULL if there is none. */
char *sfs_lower_rel_path(struct sfs_fs *fs, struct sfs_node *n);
