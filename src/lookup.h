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

/* Node for an object scratchfs just created in parent's local dir. */
int sfs_lookup_created(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, bool opaque, struct sfs_node **out,
		       struct stat *st);

/* Build a root node for the mount. */
struct sfs_node *sfs_root_node(struct sfs_fs *fs, GError **err);
