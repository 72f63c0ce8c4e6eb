/* attr.h - the attributes a node reports, and the shared data behind it
 * (the kernel overlayfs's inode.c plays this role).
 *
 * st_ino is the node's identity (node.h), st_nlink counts the shared names
 * of an indexed file (index.h), and a metadata-only copy reports the size
 * of the shared data it still reads from.  When a shared data file changes
 * behind the kernel's back, the kernel is told to drop its pages.
 */
#pragma once

#include "fs.h"

/* The attributes of n as the mount reports them. */
int sfs_node_getattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *st);

/* Turn st, a stat of n's winning object, into n's attributes. */
void sfs_node_attrs(struct sfs_fs *fs, struct sfs_node *n, struct stat *st);

/* Has the data file changed since last seen (open or getattr)?  Records
 * what it saw; false the first time. */
bool sfs_node_data_changed(struct sfs_node *n, const struct stat *data);
/* The opposite, and only if it had been seen before (keep_cache). */
bool sfs_node_data_unchanged(struct sfs_node *n, const struct stat *data);

/* Open / stat the shared data of a node (metacopy or shared-only). */
int sfs_node_open_lowerdata(struct sfs_fs *fs, struct sfs_node *n, int flags);
int sfs_node_stat_lowerdata(struct sfs_fs *fs, struct sfs_node *n,
			    struct stat *st);
