/* nslock.c - the namespace lock (nslock.h). */
#include "config.h"

#include "nslock.h"

/* How deep this thread holds the namespace lock exclusively (one
 * filesystem per process). */
static __thread unsigned ns_depth;
/* How often this thread holds it shared (for assertions only). */
static __thread unsigned ns_shared;

void sfs_ns_lock(struct sfs_fs *fs)
{
	if (ns_depth++ == 0)
		g_rw_lock_writer_lock(&fs->ns_lock);
}

void sfs_ns_unlock(struct sfs_fs *fs)
{
	if (--ns_depth == 0)
		g_rw_lock_writer_unlock(&fs->ns_lock);
}

bool sfs_ns_lock_shared(struct sfs_fs *fs)
{
	if (ns_depth)
		return false;
	g_rw_lock_reader_lock(&fs->ns_lock);
	ns_shared++;
	return true;
}

void sfs_ns_unlock_shared(struct sfs_fs *fs, bool taken)
{
	if (!taken)
		return;
	ns_shared--;
	g_rw_lock_reader_unlock(&fs->ns_lock);
}

void sfs_ns_assert(bool exclusive)
{
#ifndef NDEBUG
	if (ns_depth == 0 && (exclusive || ns_shared == 0))
		g_error("namespace lock not held%s",
			exclusive ? " exclusively" : "");
#else
	(void)exclusive;
#endif
}
