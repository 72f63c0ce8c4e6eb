/* thread.h - helper threads that shutdown may have to leave behind.
 *
 * The page-cache notifier and the fd reclaim thread write to /dev/fuse,
 * and such a write can wait on a request that nobody answers once the
 * session loop has ended.  Shutdown waits a bounded time for them, then
 * leaves them running (the process is about to exit) with their state
 * still allocated.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

struct sfs_thread {
	GThread *thread;
	GMutex lock;  /* also free for the thread's own waits */
	GCond cond;
	bool done;    /* under lock: the thread is returning */
};

void sfs_thread_start(struct sfs_thread *t, const char *name, GThreadFunc fn,
		      gpointer data);

/* Called by the thread, without t->lock held, as it returns. */
void sfs_thread_exiting(struct sfs_thread *t);

/* After the thread was asked to stop: true if it ended within two seconds
 * (joined; t may be freed), false if it was left behind (t must stay). */
bool sfs_thread_join(struct sfs_thread *t, const char *what);
