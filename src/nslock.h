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
 * the lock: in any mode (held), or exclusively (exclusive). */
bool sfs_ns_held_by_me(bool exclusive);
static inline void sfs_assert_ns_held(struct sfs_fs *fs)
{
	(void)fs;
#ifndef NDEBUG
	if (!sfs_ns_held_by_me(false))
		g_error("namespace lock not held");
#endif
}
static inline void sfs_assert_ns_exclusive(struct sfs_fs *fs)
{
	(void)fs;
#ifndef NDEBUG
	if (!sfs_ns_held_by_me(true))
		g_error("namespace lock not held exclusively");
#endif
}
