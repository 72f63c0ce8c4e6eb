/* lookup.h - resolve one name across the layers.
 *
 * Order: the local layer first; a whiteout there (or a ".wh.NAME" marker)
 * ends the search; a local non-directory wins outright; directories merge
 * with same-named directories below until an opaque one or a
 * non-directory is met.  A shared layer is consulted in order, leftmost
 * (index 1) first.
 */
#pragma once

#include "fs.h"

/* On success *out holds the node with one more lookup reference and st its
 * attributes as reported; *local_name (if not NULL) tells whether the name
 * itself is in parent's local directory.  -ENOENT for a negative entry. */
int sfs_lookup(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
	       struct sfs_node **out, struct stat *st, bool *local_name);

/* Does dirfd/name carry the metacopy xattr (data still in a shared
 * layer)? */
bool sfs_is_metacopy_at(struct sfs_fs *fs, int dirfd, const char *name);

/* Node for an object scratchfs just created in parent's local dir. */
int sfs_lookup_created(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, bool opaque, struct sfs_node **out,
		       struct stat *st);

/* The attributes of n as the mount reports them. */
int sfs_node_getattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *st);

/* Build a root node for the mount. */
struct sfs_node *sfs_root_node(struct sfs_fs *fs, GError **err);

/* Path of a shared-layer object relative to its layer root ("/a/b"). */
char *sfs_lower_path(struct sfs_fs *fs, int fd, int layer);

/* Find name in parent's shared directories from position *i on: 1 and
 * *i, st set where it is; 0 if absent or hidden by a whiteout; -errno. */
int sfs_lower_find(struct sfs_node *parent, const char *name, guint *i,
		   struct stat *st);

/* Shared directories merging into a directory: helpers for redirect.c. */
void sfs_lowerdirs_add(GArray **dirs, int fd, int layer);
int sfs_collect_lowerdirs(struct sfs_fs *fs, struct sfs_node *parent,
			  const char *name, guint from, GArray **dirs);

/* Has the data file changed since last seen (open or getattr)?  Records
 * what it saw; false the first time. */
bool sfs_node_data_changed(struct sfs_node *n, const struct stat *data);

/* Open / stat the shared data of a node (metacopy or shared-only). */
int sfs_node_open_lowerdata(struct sfs_fs *fs, struct sfs_node *n, int flags);
int sfs_node_stat_lowerdata(struct sfs_fs *fs, struct sfs_node *n,
			    struct stat *st);
