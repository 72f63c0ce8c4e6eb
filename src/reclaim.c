/* reclaim.c - give fds back when the daemon nears its fd limit
 * (see reclaim.h). */
#include "config.h"

#include "log.h"
#include "counters.h"
#include "reclaim.h"
#include "thread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

struct sfs_reclaim {
	struct fuse_session *se;
	struct sfs_table *table;
	int probe_fd;     /* an fd of ours to duplicate in still_pressed() */
	int high;         /* a node fd at or above this wakes the thread */
	int low;          /* a pass aims to leave nodes this many fds */
	gint pending;     /* atomic: a pass was asked for */
	gint unsupported; /* atomic: the kernel refused FUSE_NOTIFY_PRUNE */
	gint stopping;    /* atomic: sfs_reclaim_stop() was called */
	gint resting;     /* atomic: the last passes freed nothing */
	uint64_t *pruned; /* counters.h: nodes the kernel was asked to forget */
	struct sfs_thread thread; /* its lock and cond guard `pending` waits */
};

/* The kernel needs a moment to drop dentries and send FORGET: passes are
 * at least this far apart, so a burst of replies above the mark makes one
 * pass, not one per reply. */
#define PASS_INTERVAL_US (20 * 1000)
/* Passes in a row (half a second) that did not bring the fds held below
 * the lowest count seen before the thread rests: what is left is in use
 * (open files, working directories), and pruning again would not change
 * that.  New nodes arriving while it works are not a stall. */
#define MAX_STALLS 25
#define REST_US (1000 * 1000)

/* FUSE_NOTIFY_PRUNE (FUSE protocol 7.45): the kernel drops the unused
 * dentries of the listed nodes, exactly what memory pressure would do;
 * dentries in use (a working directory, a mount point, an open file) stay.
 * libfuse 3.14 has no call for it, so the message is written here, laid
 * out as in <linux/fuse.h>: fuse_out_header with the notify code in
 * `error` and unique 0, fuse_notify_prune_out, then the nodeids. */
#define NOTIFY_PRUNE 9
#define PRUNE_BATCH 512

struct prune_msg {
	uint32_t len;
	int32_t code;
	uint64_t unique;
	uint32_t count;
	uint32_t padding;
	uint64_t spare;
};

static int send_prune(struct sfs_reclaim *rc, const uint64_t *ids, guint n)
{
	struct prune_msg m = {
		.len = (uint32_t)(sizeof(m) + n * sizeof(*ids)),
		.code = NOTIFY_PRUNE,
		.count = n,
	};
	struct iovec iov[2] = {
		{ .iov_base = &m, .iov_len = sizeof(m) },
		{ .iov_base = (void *)ids, .iov_len = n * sizeof(*ids) },
	};
	return writev(fuse_session_fd(rc->se), iov, 2) < 0 ? -errno : 0;
}

static gint by_last_use(gconstpointer a, gconstpointer b)
{
	gint64 x = ((const struct sfs_prunable *)a)->last_used;
	gint64 y = ((const struct sfs_prunable *)b)->last_used;
	return (x > y) - (x < y);
}

static gint deepest_first(gconstpointer a, gconstpointer b)
{
	return ((const struct sfs_prunable *)b)->depth -
	       ((const struct sfs_prunable *)a)->depth;
}

/* Keep only the nodes in the subtrees of the first n (the victims):
 * a directory's dentry stays while any child's does. */
static void keep_subtrees(GArray *all, guint n)
{
	g_autoptr(GHashTable) parent = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_autoptr(GHashTable) victim = g_hash_table_new(g_int64_hash, g_int64_equal);
	for (guint i = 0; i < all->len; i++) {
		struct sfs_prunable *p = &g_array_index(all, struct sfs_prunable, i);
		g_hash_table_insert(parent, &p->id, &p->parent);
		if (i < n)
			g_hash_table_add(victim, &p->id);
	}
	guint kept = 0;
	for (guint i = 0; i < all->len; i++) {
		struct sfs_prunable *p = &g_array_index(all, struct sfs_prunable, i);
		const uint64_t *up = &p->id;
		int hops = 0; /* parents are read at different times: bound it */
		while (up && !g_hash_table_contains(victim, up) && hops++ < 4096)
			up = g_hash_table_lookup(parent, up);
		if (up && g_hash_table_contains(victim, up))
			g_array_index(all, struct sfs_prunable, kept++) = *p;
	}
	g_array_set_size(all, kept);
}

/* The least recently used nodes whose fds bring what is held down to
 * `low`, with everything below them, deepest first so that a directory's
 * children are gone by the time its own turn comes.  Returns the fds
 * held. */
static int reclaim_pass(struct sfs_reclaim *rc)
{
	GArray *all = sfs_table_prunable(rc->table);
	guint total = all->len;
	g_array_sort(all, by_last_use);
	int held = 0;
	for (guint i = 0; i < all->len; i++)
		held += g_array_index(all, struct sfs_prunable, i).fds;
	guint n = 0;
	for (int covered = 0; n < all->len && held - covered > rc->low; n++)
		covered += g_array_index(all, struct sfs_prunable, n).fds;
	keep_subtrees(all, n);
	n = all->len;
	g_array_sort(all, deepest_first);
	uint64_t ids[PRUNE_BATCH];
	for (guint i = 0; i < n && !g_atomic_int_get(&rc->stopping);) {
		guint k = 0;
		for (; k < PRUNE_BATCH && i < n; k++, i++)
			ids[k] = g_array_index(all, struct sfs_prunable, i).id;
		int r = send_prune(rc, ids, k);
		if (r == -EINVAL || r == -ENOSYS) {
			sfs_warn("near the fd limit, but this kernel cannot be "
				 "asked to forget names (FUSE_NOTIFY_PRUNE needs "
				 "FUSE protocol 7.45)");
			g_atomic_int_set(&rc->unsupported, 1);
			break;
		}
		if (r < 0)
			break; /* unmounted meanwhile */
		sfs_count_add(rc->pruned, k);
	}
	sfs_debug("reclaim: pruned %u of %u nodes, %d fds held", n, total,
		  held);
	g_array_free(all, TRUE);
	return held;
}

/* Are the fds below the high-water mark all taken?  The kernel hands
 * out the lowest free number, so that number tells. */
static bool still_pressed(const struct sfs_reclaim *rc)
{
	int fd = fcntl(rc->probe_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return errno == EMFILE;
	close(fd);
	return fd >= rc->high;
}

static bool stopping(struct sfs_reclaim *rc)
{
	return g_atomic_int_get(&rc->stopping) ||
	       g_atomic_int_get(&rc->unsupported);
}

/* New nodes may take the freed fds as fast as FORGETs come in: keep going
 * until numbers below the mark are free, or nothing more comes back. */
static void reclaim_until_relieved(struct sfs_reclaim *rc)
{
	int least = G_MAXINT, stalls = 0;
	do {
		int held = reclaim_pass(rc);
		stalls = held >= least ? stalls + 1 : 0;
		least = MIN(least, held);
		g_usleep(PASS_INTERVAL_US);
	} while (!stopping(rc) && still_pressed(rc) && stalls < MAX_STALLS);
	if (stalls >= MAX_STALLS && !stopping(rc)) {
		g_atomic_int_set(&rc->resting, 1);
		g_usleep(REST_US);
		g_atomic_int_set(&rc->resting, 0);
	}
}

static gpointer reclaim_main(gpointer data)
{
	struct sfs_reclaim *rc = data;
	g_mutex_lock(&rc->thread.lock);
	for (;;) {
		while (!stopping(rc) && !g_atomic_int_get(&rc->pending))
			g_cond_wait(&rc->thread.cond, &rc->thread.lock);
		if (stopping(rc))
			break;
		g_mutex_unlock(&rc->thread.lock);
		reclaim_until_relieved(rc);
		g_atomic_int_set(&rc->pending, 0);
		g_mutex_lock(&rc->thread.lock);
	}
	g_mutex_unlock(&rc->thread.lock);
	sfs_thread_exiting(&rc->thread);
	return NULL;
}

struct sfs_reclaim *sfs_reclaim_start(struct fuse_session *se,
				      struct sfs_table *t, int probe_fd,
				      long fd_limit, uint64_t *pruned)
{
	struct sfs_reclaim *rc = g_new0(struct sfs_reclaim, 1);
	rc->se = se;
	rc->pruned = pruned;
	rc->table = t;
	rc->probe_fd = probe_fd;
	long limit = CLAMP(fd_limit, 64, G_MAXINT);
	/* Half the limit stays free for open files and per-request fds,
	 * which cannot be given back. */
	rc->high = (int)(limit / 2);
	rc->low = (int)(limit / 4);
	sfs_thread_start(&rc->thread, "sfs-reclaim", reclaim_main, rc);
	return rc;
}

void sfs_reclaim_kick(struct sfs_reclaim *rc)
{
	if (!rc || g_atomic_int_get(&rc->pending) ||
	    g_atomic_int_get(&rc->unsupported))
		return;
	g_mutex_lock(&rc->thread.lock);
	g_atomic_int_set(&rc->pending, 1);
	g_cond_signal(&rc->thread.cond);
	g_mutex_unlock(&rc->thread.lock);
}

void sfs_reclaim_note(struct sfs_reclaim *rc, const struct sfs_node *n)
{
	int maxfd;
	if (rc && sfs_node_fds(n, &maxfd) && maxfd >= rc->high)
		sfs_reclaim_kick(rc);
}

bool sfs_reclaim_wait(struct sfs_reclaim *rc, int r)
{
	/* Waiting is pointless when nothing can be given back: fail fast. */
	if (!rc || (r != -EMFILE && r != -ENFILE) ||
	    g_atomic_int_get(&rc->unsupported) ||
	    g_atomic_int_get(&rc->resting))
		return false;
	sfs_reclaim_kick(rc);
	/* FORGETs come in on the other threads; with one thread they wait
	 * for this request, and the wait is short. */
	for (int i = 0; i < 10 && still_pressed(rc); i++)
		g_usleep(PASS_INTERVAL_US / 2);
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
	g_mutex_lock(&rc->thread.lock);
	g_atomic_int_set(&rc->stopping, 1);
	g_cond_signal(&rc->thread.cond);
	g_mutex_unlock(&rc->thread.lock);
	/* A pass is short, but a write to /dev/fuse could wait on a request
	 * that nobody will answer any more. */
	if (!sfs_thread_join(&rc->thread, "fd reclaim thread"))
		return; /* rc stays allocated for the thread */
	g_free(rc);
}
