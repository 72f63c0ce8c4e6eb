/* usage.h - what the local layer holds, and its limit (-o upper_limit=,
 * -o upper_inodes=).
 *
 * Counted in allocated bytes (st_blocks * 512, as du and the kubelet
 * measure an emptyDir) and inodes, hardlinks once, from a scan of
 * upperdir and workdir at mount plus every change made through the
 * mount.  A change that would take the layer past a limit fails with
 * ENOSPC before anything is written; statfs reports the limit as the
 * size (df shows it).
 *
 * Growth is reserved before the change from an estimate (whole blocks of
 * the size added; one block per directory) and corrected to what the
 * filesystem really allocated afterwards.  What is not seen live (a
 * directory growing a block as it fills, xattr blocks) is picked up by
 * the next mount's scan.
 */
#pragma once

#include "fs.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

/* Count what upperdir and workdir hold (at mount). */
bool sfs_usage_scan(struct sfs_fs *fs, GError **err);

/* Take bytes and inodes from what the limits leave: 0, or -ENOSPC with
 * nothing taken.  Negative values give back. */
int sfs_usage_reserve(struct sfs_fs *fs, int64_t bytes, int64_t inodes);
/* The same without the check (corrections, frees). */
void sfs_usage_add(struct sfs_fs *fs, int64_t bytes, int64_t inodes);

static inline int64_t sfs_alloc_bytes(const struct stat *st)
{
	return (int64_t)st->st_blocks * 512;
}

/* Whole blocks for `size` bytes: the estimate reserved before writing. */
static inline int64_t sfs_usage_round(int64_t size)
{
	return (size + 4095) & ~(int64_t)4095;
}

/* A change to the open file fd that writes `len` bytes at `off`:
 * reserve what it may allocate (begin), then charge what it really did
 * (end).  begin returns -ENOSPC (nothing to end) or 0. */
struct sfs_charge {
	int fd;
	int64_t reserved;
	int64_t before;  /* allocated bytes before, -1 unknown */
};
int sfs_usage_begin(struct sfs_fs *fs, int fd, off_t off, off_t len,
		    struct sfs_charge *c);
void sfs_usage_end(struct sfs_fs *fs, struct sfs_charge *c);

/* A new object was made after reserving `reserved` bytes and one inode:
 * charge what it really holds (st), or keep the estimate (st NULL). */
void sfs_usage_settle(struct sfs_fs *fs, int64_t reserved,
		      const struct stat *st);

/* A whiteout was made (r == 0; its inode was reserved) or not (the
 * reservation goes back).  Returns r. */
int sfs_whiteout_made(struct sfs_fs *fs, int r);

/* dirfd/name (stat st) is about to lose a name: if it is the last one,
 * its inode and blocks go back once the removal succeeded. */
void sfs_usage_name_removed(struct sfs_fs *fs, const struct stat *st);

/* statfs on the mount: the limits as the size. */
void sfs_usage_statfs(struct sfs_fs *fs, struct statvfs *sv);
