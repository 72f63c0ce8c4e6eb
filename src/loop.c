/* loop.c - one reader, a pool for requests that may block (see loop.h). */
#include "config.h"

#include "kernel_io.h"
#include "log.h"
#include "loop.h"
#include "node.h"
#include "thread.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>

struct task {
	size_t size;
	char mem[];
};

struct worker {
	struct sfs_thread t;
	struct fuse_session *se;
	GAsyncQueue *q;
};

static struct task stop_task; /* one per worker ends the pool */

static gpointer worker_main(gpointer data)
{
	struct worker *w = data;
	struct task *t;
	while ((t = g_async_queue_pop(w->q)) != &stop_task) {
		struct fuse_buf buf = { .size = t->size, .mem = t->mem };
		fuse_session_process_buf(w->se, &buf);
		g_free(t);
	}
	sfs_thread_exiting(&w->t);
	return NULL;
}

/* A node the request names may need a shared layer, which can be a
 * network volume that stops answering: the reader must not wait for it
 * (local-only work goes on meanwhile).  Nodes are alive here: the kernel
 * names only nodes it has not forgotten, and FORGET is handled by the
 * reader itself, in order. */
static bool names_shared(uint64_t id)
{
	if (id == 0)
		return false; /* INIT, INTERRUPT, FORGETs name no node to use */
	if (id == FUSE_ROOT_ID)
		return true;  /* the root merges the shared layers */
	return !sfs_node_local_only((struct sfs_node *)(uintptr_t)id);
}

/* Requests whose handling may wait long: on a shared layer, on the disk
 * (the data path), or on a copy-up of a file's data. */
static bool may_block(const struct fuse_buf *b)
{
	uint32_t op = sfs_kio_opcode(b->mem, b->size);
	if (op == FUSE_FORGET || op == FUSE_BATCH_FORGET)
		return false;
	if (names_shared(sfs_kio_nodeid(b->mem, b->size)) ||
	    names_shared(sfs_kio_link_source(b->mem, b->size)))
		return true;
	switch (op) {
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_READ:
	case FUSE_WRITE:
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_FALLOCATE:
	case FUSE_COPY_FILE_RANGE:
	case FUSE_SETATTR:
	case FUSE_CREATE:
		return true;
	case FUSE_OPEN: {
		uint32_t fl = sfs_kio_open_flags(b->mem, b->size);
		return (fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC);
	}
	default:
		return false;
	}
}

static void hand_over(GAsyncQueue *q, const struct fuse_buf *b)
{
	struct task *t = g_malloc(sizeof(*t) + b->size);
	t->size = b->size;
	memcpy(t->mem, b->mem, b->size);
	g_async_queue_push(q, t);
	sfs_kio_handed_over(); /* no spin for the reply a worker will send */
}

/* Workers are joined (their thread-local libfuse pipes freed) unless one
 * is stuck in a request the kernel no longer answers. */
static void workers_stop(struct worker *w, unsigned n, GAsyncQueue *q)
{
	for (unsigned i = 0; i < n; i++)
		g_async_queue_push_front(q, &stop_task);
	bool all = true;
	for (unsigned i = 0; i < n; i++)
		all &= sfs_thread_join(&w[i].t, "a worker thread");
	if (all) {
		struct task *t;
		while ((t = g_async_queue_try_pop(q)))
			g_free(t);
		g_async_queue_unref(q);
		g_free(w);
	}
}

int sfs_loop_run(struct fuse_session *se, unsigned workers)
{
	GAsyncQueue *q = g_async_queue_new();
	struct worker *w = g_new0(struct worker, workers);
	for (unsigned i = 0; i < workers; i++) {
		w[i].se = se;
		w[i].q = q;
		sfs_thread_start(&w[i].t, "sfs-worker", worker_main, &w[i]);
	}
	struct fuse_buf buf = { 0 };
	int r = 0;
	while (!fuse_session_exited(se)) {
		r = fuse_session_receive_buf(se, &buf);
		if (r == -EINTR || r == -EAGAIN) {
			r = 0;
			continue;
		}
		if (r <= 0)
			break;
		if (workers && may_block(&buf))
			hand_over(q, &buf);
		else
			fuse_session_process_buf(se, &buf);
	}
	workers_stop(w, workers, q);
	free(buf.mem);
	fuse_session_reset(se);
	return r < 0 ? r : 0;
}
