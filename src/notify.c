/* notify.c - tell the kernel to drop a node's cached pages (notify.h). */
#include "config.h"

#include "log.h"
#include "notify.h"
#include "thread.h"

#include <glib.h>

struct sfs_notifier {
	struct fuse_session *se;
	GAsyncQueue *queue; /* nodeids, or &stop_token */
	struct sfs_thread thread;
};

/* GAsyncQueue takes no NULL: a distinct address ends the thread. */
static char stop_token;

static gpointer notifier_main(gpointer data)
{
	struct sfs_notifier *nt = data;
	for (;;) {
		gpointer item = g_async_queue_pop(nt->queue);
		if (item == &stop_token) {
			sfs_thread_exiting(&nt->thread);
			return NULL;
		}
		fuse_ino_t id = (fuse_ino_t)(uintptr_t)item;
		/* -ENOENT: the kernel forgot the node meanwhile; fine. */
		int r = fuse_lowlevel_notify_inval_inode(nt->se, id, 0, 0);
		if (r < 0 && r != -ENOENT)
			sfs_debug("page cache invalidation failed: %s",
				  g_strerror(-r));
	}
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
		g_async_queue_push(nt->queue, (gpointer)(uintptr_t)nodeid);
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
	g_async_queue_unref(nt->queue);
	g_free(nt);
}
