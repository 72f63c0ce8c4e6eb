/* notify.c - tell the kernel to drop a node's cached pages (notify.h). */
#include "config.h"

#include "log.h"
#include "notify.h"
#include "thread.h"

#include <glib.h>

struct sfs_notifier {
	struct fuse_session *se;
	GAsyncQueue *queue; /* struct inval, or &stop_token */
	struct sfs_thread thread;
};

struct inval {
	fuse_ino_t id;
	gint64 when; /* monotonic µs; 0: now */
};

/* GAsyncQueue takes no NULL: a distinct address ends the thread. */
static struct inval stop_token;

static void inval_now(struct sfs_notifier *nt, struct inval *iv)
{
	/* -ENOENT: the kernel forgot the node meanwhile; fine. */
	int r = fuse_lowlevel_notify_inval_inode(nt->se, iv->id, 0, 0);
	if (r < 0 && r != -ENOENT)
		sfs_debug("page cache invalidation failed: %s", g_strerror(-r));
	g_free(iv);
}

/* Delayed invalidations all wait the same `timeout`: they come due in
 * the order they came, so a FIFO holds them. */
static gpointer notifier_main(gpointer data)
{
	struct sfs_notifier *nt = data;
	g_autoptr(GQueue) later = g_queue_new();
	for (;;) {
		struct inval *next = g_queue_peek_head(later);
		gint64 wait = next ? next->when - g_get_monotonic_time() : -1;
		struct inval *iv = !next ? g_async_queue_pop(nt->queue)
			: wait > 0 ? g_async_queue_timeout_pop(nt->queue, wait)
				   : NULL;
		if (iv == &stop_token) {
			g_queue_free_full(g_steal_pointer(&later), g_free);
			sfs_thread_exiting(&nt->thread);
			return NULL;
		}
		if (iv && iv->when)
			g_queue_push_tail(later, iv);
		else if (iv)
			inval_now(nt, iv);
		gint64 now = g_get_monotonic_time();
		while ((next = g_queue_peek_head(later)) && next->when <= now)
			inval_now(nt, g_queue_pop_head(later));
	}
}

static void push(struct sfs_notifier *nt, fuse_ino_t id, gint64 when)
{
	struct inval *iv = g_new(struct inval, 1);
	iv->id = id;
	iv->when = when;
	g_async_queue_push(nt->queue, iv);
}

struct sfs_notifier *sfs_notifier_start(struct fuse_session *se)
{
	struct sfs_notifier *nt = g_new0(struct sfs_notifier, 1);
	nt->se = se;
	nt->queue = g_async_queue_new();
	sfs_thread_start(&nt->thread, "sfs-notify", notifier_main, nt);
	return nt;
}

void sfs_notifier_inval(struct sfs_notifier *nt, fuse_ino_t nodeid)
{
	if (nt && nodeid)
		push(nt, nodeid, 0);
}

void sfs_notifier_inval_after(struct sfs_notifier *nt, fuse_ino_t nodeid,
			      double seconds)
{
	if (nt && nodeid)
		push(nt, nodeid, g_get_monotonic_time() +
				 MAX((gint64)(seconds * G_USEC_PER_SEC), 1));
}

void sfs_notifier_stop(struct sfs_notifier *nt)
{
	if (!nt)
		return;
	g_async_queue_push_front(nt->queue, &stop_token);
	/* An invalidation can wait on a page that a READ nobody will answer
	 * any more holds. */
	if (!sfs_thread_join(&nt->thread, "page cache notifier"))
		return; /* nt stays allocated for the thread */
	struct inval *iv;
	while ((iv = g_async_queue_try_pop(nt->queue)))
		g_free(iv);
	g_async_queue_unref(nt->queue);
	g_free(nt);
}
