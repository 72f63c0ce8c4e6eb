/* copyup.h - bring a shared-layer object into the local layer.
 *
 * Parents first, each step atomic: the copy is built in workdir/work and
 * renamed into place, so a crash leaves either no local copy (the shared
 * object still shows) or a complete one.  Workdir leftovers are removed at
 * the next mount.
 *
 * Regular files may be copied as metadata only (kernel "metacopy"): the
 * local file has the right owner, mode, times, xattrs and size, the
 * overlay.metacopy xattr, and scratchfs.lowerdata naming the shared file
 * that still holds the data.  Data follows when a name is opened for
 * writing: it is written into the same local inode (so hardlinks made
 * meanwhile stay one file), fsync'ed, and only then is the metacopy xattr
 * removed — the commit point.
 */
#pragma once

#include "fs.h"

enum sfs_copy_mode {
	SFS_COPY_META,   /* metadata only where allowed (files), else full */
	SFS_COPY_DATA,   /* full data */
	SFS_COPY_EMPTY,  /* full, but the data is about to be truncated away */
};

/* Make sure n has a local object (and its data, per mode). */
int sfs_copyup(struct sfs_fs *fs, struct sfs_node *n, enum sfs_copy_mode mode);

/* Copy up a directory and everything visible below it, then mark it
 * opaque: used before renaming a directory that has shared content. */
int sfs_copyup_tree(struct sfs_fs *fs, struct sfs_node *dir);

/* Make sure the name parent/name itself exists locally for n (a node
 * reached through the index may have a local inode but not this name). */
int sfs_copyup_name(struct sfs_fs *fs, struct sfs_node *parent,
		    const char *name, struct sfs_node *n);

/* Before one name of a file hardlinked inside a shared layer goes away:
 * copy it up (metadata only), so the index counts the names left. */
int sfs_copyup_shared_link(struct sfs_fs *fs, struct sfs_node *n);

/* Does this node have anything in a shared layer (needs a whiteout when
 * removed, a copy-up when renamed)? */
bool sfs_node_has_lower(const struct sfs_node *n);
