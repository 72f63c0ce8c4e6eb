/* reclaim.c - give fds back when the daemon nears its fd limit
 * (see reclaim.h). */
#include "config.h"

#include "log.h"
#include "reclaim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

struct sfs_reclaim {
	struct fuse_session *se;
	struct sfs_table *table;
	int high;         /* a node fd at or above this wakes the thread */
	int low;          /* a pass aims to leave nodes this many fds */
	gint pending;     /* atomic: a pass was asked for */
	GMutex lock;
	GCond cond;
	bool stop;
	gint stopping;    /* atomic copy of stop, read without the lock */
	GThread *thread;
};

/* The kernel needs a moment to drop dentries and send FORGET: passes are
 * at least this far apart, so a burst of replies above the mark makes one
 * pass, not one per reply. */
#define PASS_INTERVAL_US (20 * 1000)

static gint by_last_use(gconstpointer a, gconstpointer b)
{
	gint64 x = ((const struct sfs_fd_holder *)a)->last_used;
	gint64 y = ((const struct sfs_fd_holder *)b)->last_used;
	return (x > y) - (x < y);
}

/* Invalidate the oldest names until the rest hold `low` fds.  A
 * directory's subtree goes with it, so the kernel usually gives back more
 * than that. */
static void reclaim_pass(struct sfs_reclaim *rc)
{
	GArray *h = sfs_table_fd_holders(rc->table);
	g_array_sort(h, by_last_use);
	int held = 0;
	for (guint i = 0; i < h->len; i++)
		held += g_array_index(h, struct sfs_fd_holder, i).fds;
	int covered = 0;
	guint sent = 0;
	for (guint i = 0; i < h->len && held - covered > rc->low; i++) {
		struct sfs_fd_holder *e = &g_array_index(h, struct sfs_fd_holder, i);
		/* -ENOENT: the kernel already forgot the parent or the name;
		 * a stale parent id at worst drops another cached name. */
		int r = fuse_lowlevel_notify_inval_entry(rc->se, e->parent,
							 e->name, strlen(e->name));
		if (r < 0 && r != -ENOENT)
			sfs_debug("reclaim: invalidating %s failed: %s", e->name,
				  g_strerror(-r));
		covered += e->fds;
		sent++;
	}
	sfs_debug("reclaim: %u of %u names invalidated for %d of %d fds", sent,
		  h->len, covered, held);
	sfs_fd_holders_free(h);
}

/* Are the fds below the high-water mark all taken?  The kernel hands
 * out the lowest free number, so that number tells. */
static bool still_pressed(const struct sfs_reclaim *rc)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return errno == EMFILE;
	close(fd);
	return fd >= rc->high;
}

static gpointer reclaim_main(gpointer data)
{
	struct sfs_reclaim *rc = data;
	g_mutex_lock(&rc->lock);
	for (;;) {
		while (!rc->stop && !g_atomic_int_get(&rc->pending))
			g_cond_wait(&rc->cond, &rc->lock);
		if (rc->stop)
			break;
		g_mutex_unlock(&rc->lock);
		/* New nodes may take the freed fds as fast as FORGETs come
		 * in: keep going until numbers below the mark are free. */
		do {
			reclaim_pass(rc);
			g_usleep(PASS_INTERVAL_US);
		} while (still_pressed(rc) && !g_atomic_int_get(&rc->stopping));
		g_atomic_int_set(&rc->pending, 0);
		g_mutex_lock(&rc->lock);
	}
	g_mutex_unlock(&rc->lock);
	return NULL;
}

struct sfs_reclaim *sfs_reclaim_start(struct fuse_session *se,
				      struct sfs_table *t, long fd_limit)
{
	struct sfs_reclaim *rc = g_new0(struct sfs_reclaim, 1);
	rc->se = se;
	rc->table = t;
	long limit = CLAMP(fd_limit, 64, G_MAXINT);
	/* Half the limit stays free for open files and per-request fds,
	 * which cannot be given back. */
	rc->high = (int)(limit / 2);
	rc->low = (int)(limit / 4);
	g_mutex_init(&rc->lock);
	g_cond_init(&rc->cond);
	rc->thread = g_thread_new("sfs-reclaim", reclaim_main, rc);
	return rc;
}

void sfs_reclaim_kick(struct sfs_reclaim *rc)
{
	if (!rc || g_atomic_int_get(&rc->pending))
		return;
	g_mutex_lock(&rc->lock);
	g_atomic_int_set(&rc->pending, 1);
	g_cond_signal(&rc->cond);
	g_mutex_unlock(&rc->lock);
}

void sfs_reclaim_note(struct sfs_reclaim *rc, const struct sfs_node *n)
{
	int maxfd;
	if (rc && sfs_node_fds(n, &maxfd) && maxfd >= rc->high)
		sfs_reclaim_kick(rc);
}

bool sfs_reclaim_wait(struct sfs_reclaim *rc, int r)
{
	if (!rc || (r != -EMFILE && r != -ENFILE))
		return false;
	sfs_reclaim_kick(rc);
	g_usleep(PASS_INTERVAL_US);
	return true;
}

bool sfs_reclaim_busy(struct sfs_reclaim *rc)
{
	return rc && g_atomic_int_get(&rc->pending);
}

void sfs_reclaim_stop(struct sfs_reclaim *rc)
{
	if (!rc)
		return;
	g_atomic_int_set(&rc->stopping, 1);
	g_mutex_lock(&rc->lock);
	rc->stop = true;
	g_cond_signal(&rc->cond);
	g_mutex_unlock(&rc->lock);
	g_thread_join(rc->thread);
	g_mutex_clear(&rc->lock);
	g_cond_clear(&rc->cond);
	g_free(rc);
}
