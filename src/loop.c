/* loop.c - one reader, a pool for requests that may block (see loop.h). */
#include "config.h"

#include "kernel_io.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct task {
	size_t size;
	char mem[];
};

static void run_task(gpointer data, gpointer user_data)
{
	struct task *t = data;
	struct fuse_buf buf = { .size = t->size, .mem = t->mem };
	fuse_session_process_buf(user_data, &buf);
	g_free(t);
}

/* Requests whose handling may wait on the disk for long: the data path,
 * and everything that may copy a file's data up. */
static bool may_block(const struct fuse_buf *b)
{
	switch (sfs_kio_opcode(b->mem, b->size)) {
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

static GThreadPool *pool_new(struct fuse_session *se, unsigned workers)
{
	if (!workers)
		return NULL;
	/* Signals go to the reader: its poll() returns EINTR and the loop
	 * sees the session end.  Pool threads inherit this mask. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	GThreadPool *p = g_thread_pool_new_full(run_task, se, g_free,
						(gint)workers, TRUE, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return p;
}

int sfs_loop_run(struct fuse_session *se, unsigned workers)
{
	GThreadPool *pool = pool_new(se, workers);
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
		if (pool && may_block(&buf)) {
			struct task *t = g_malloc(sizeof(*t) + buf.size);
			t->size = buf.size;
			memcpy(t->mem, buf.mem, buf.size);
			g_thread_pool_push(pool, t, NULL);
		} else {
			fuse_session_process_buf(se, &buf);
		}
	}
	if (pool)
		g_thread_pool_free(pool, TRUE, TRUE);
	free(buf.mem);
	fuse_session_reset(se);
	return r < 0 ? r : 0;
}
