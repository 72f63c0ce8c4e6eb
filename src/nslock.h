/* nslock.h - the namespace lock (fs->ns_lock, see fs.h). */
#pragma once

#include "fs.h"

/* Exclusive, recursive in the holding thread. */
void sfs_ns_lock(struct sfs_fs *fs);
void sfs_ns_unlock(struct sfs_fs *fs);
/* Shared; false (nothing taken) if this thread holds it exclusively. */
bool sfs_ns_lock_shared(struct sfs_fs *fs);
void sfs_ns_unlock_shared(struct sfs_fs *fs, bool taken);

/* Debug builds (without NDEBUG) abort when this thread does not hold
 * the lock: in any mode, or exclusively. */
void sfs_ns_assert(bool exclusive);
static inline void sfs_assert_ns_held(struct sfs_fs *fs)
{
	(void)fs;
	sfs_ns_assert(false);
}
static inline void sfs_assert_ns_exclusive(struct sfs_fs *fs)
{
	(void)fs;
	sfs_ns_assert(true);
}
