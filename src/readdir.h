/* readdir.h - merged directory listings.
 *
 * A listing is a snapshot taken at opendir (and again on rewind to offset
 * 0): the local directory, then each shared directory below it, each name
 * once, whiteouts and ".wh." markers hiding names below them.  Offsets are
 * positions in the snapshot, so entries removed while a program walks the
 * directory (rm -rf) never make it skip or repeat a name.
 */
#pragma once

#include "fs.h"

struct sfs_dirent {
	char *name;
	uint64_t ino;        /* best-effort d_ino; readdirplus gives st_ino */
	unsigned char type;  /* DT_* */
};

struct sfs_dir {
	struct sfs_node *node;
	GArray *entries;     /* struct sfs_dirent, "." and ".." first */
	bool served;         /* a READDIR was answered from this snapshot */
	GList link;          /* in fs->open_dirs, for teardown at unmount */
};

int sfs_dir_snapshot(struct sfs_fs *fs, struct sfs_node *n,
		     struct sfs_dir *d);
void sfs_dir_clear(struct sfs_dir *d);

/* The visible names (no "." or ".."), for tree copy-up. */
int sfs_dir_names(struct sfs_fs *fs, struct sfs_node *n, GPtrArray **out);

/* 0 if the merged directory has no visible entry, -ENOTEMPTY if it has,
 * other -errno on failure. */
int sfs_dir_check_empty(struct sfs_fs *fs, struct sfs_node *n);
