/* index.h - names hardlinked to each other in a shared layer stay one file
 * once copied up (kernel overlayfs calls this index=on).
 *
 * The first name copied up is also linked as workdir/index/<st_ino>; any
 * other name of the same shared file then links to that local inode
 * instead of being copied again, and a shared-only name of it resolves to
 * it at lookup.  The index file's scratchfs.nlink xattr counts the shared
 * names that have no local name yet, so st_nlink stays exact:
 *   st_nlink = (local link count - 1 for the index link) + pending.
 */
#pragma once

#include "fs.h"

/* A shared-only name at lookup: take over the local inode if another name
 * of the file was copied up.  -errno if the index could not be read. */
int sfs_index_attach(struct sfs_fs *fs, struct sfs_node *n);

/* A copied-up local file found by name: is it in the index?  Sets
 * n->indexed and the pending count; -errno if they cannot be read. */
int sfs_index_check(struct sfs_fs *fs, struct sfs_node *n,
		    const struct stat *ust);

/* First copy-up of a shared file with lower_nlink names, before its
 * commit: link obj as the index entry with its pending count (-errno,
 * nothing left, on failure).  After the commit, sfs_index_added() makes
 * it count; if the commit fails, sfs_index_drop() removes the entry. */
int sfs_index_add(struct sfs_fs *fs, struct sfs_node *n, int obj,
		  nlink_t lower_nlink);
void sfs_index_added(struct sfs_node *n, nlink_t lower_nlink);
void sfs_index_drop(struct sfs_fs *fs, struct sfs_node *n);

/* Copy-up of another name: link it to the indexed inode.  -ENOENT if the
 * file is not indexed. */
int sfs_index_link(struct sfs_fs *fs, struct sfs_node *n);

/* One shared name of an indexed file stops counting (removed, or gets a
 * local name), in two steps around the change that commits it: first
 * the count on disk (-errno: do not make the change), then, with
 * whether the change was made, the count in memory (or the one on disk
 * put back).  Both do nothing for a node that is not indexed. */
int sfs_index_name_leaving(struct sfs_fs *fs, struct sfs_node *n);
void sfs_index_name_left(struct sfs_fs *fs, struct sfs_node *n, bool done);

/* The st_nlink to report for an indexed node. */
nlink_t sfs_index_nlink(const struct sfs_node *n, nlink_t local);
