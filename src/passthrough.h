/* passthrough.h - which opens the kernel serves without the daemon.
 *
 * With FUSE passthrough (kernel_io.c) an OPEN reply may name a backing
 * file, and the kernel then reads, writes and maps that file itself: no
 * READ or WRITE reaches the daemon.  The kernel insists that all open
 * files of one inode agree: every concurrent open of it passes through
 * to the same backing file, or none does (otherwise the open fails with
 * EINVAL, EBUSY or ETXTBSY).  So this module keeps, per inode with open
 * files, one backing id and counts of both kinds of opens:
 *  - only files whose data is in the local layer pass through (a shared
 *    file's data moves when it is copied up, and a backing file cannot
 *    follow it), with a backing file opened read-write so that it serves
 *    every later open of the inode;
 *  - while an inode has opens that do not pass through, new ones do not
 *    either, and the other way round;
 *  - otherwise the caller says whether it prefers passthrough (prefer):
 *    a backing file costs more than it saves for a small file read whole
 *    from a warm cache (ops_file.c, SFS_PT_MIN_SIZE).
 */
#pragma once

#include "fs.h"

struct sfs_pt;

struct sfs_pt *sfs_pt_new(void);
void sfs_pt_free(struct sfs_pt *pt);

/* fh bit of an open that passes through (the fd stays in the low bits). */
#define SFS_FH_PASSTHROUGH (1ull << 62)

/* After the real open of n (ino) succeeded: decide, count the open, and
 * when it passes through arrange the reply (sfs_kio_reply_passthrough).
 * Returns the fh bit to add, or -errno if the open cannot be served. */
int64_t sfs_pt_open(struct sfs_fs *fs, fuse_ino_t ino, struct sfs_node *n,
		    bool write, bool prefer);
/* RELEASE, or an OPEN whose reply could not be sent. */
void sfs_pt_release(struct sfs_fs *fs, fuse_ino_t ino, uint64_t fh);
