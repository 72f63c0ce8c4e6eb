/* thread.c - helper threads that shutdown may leave behind (thread.h). */
#include "config.h"

#include "log.h"
#include "thread.h"

void sfs_thread_start(struct sfs_thread *t, const char *name, GThreadFunc fn,
		      gpointer data)
{
	g_mutex_init(&t->lock);
	g_cond_init(&t->cond);
	t->done = false;
	t->thread = g_thread_new(name, fn, data);
}

void sfs_thread_exiting(struct sfs_thread *t)
{
	g_mutex_lock(&t->lock);
	t->done = true;
	g_cond_broadcast(&t->cond);
	g_mutex_unlock(&t->lock);
}

bool sfs_thread_join(struct sfs_thread *t, const char *what)
{
	gint64 end = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;
	g_mutex_lock(&t->lock);
	while (!t->done && g_cond_wait_until(&t->cond, &t->lock, end))
		;
	bool done = t->done;
	g_mutex_unlock(&t->lock);
	if (!done) {
		sfs_warn("%s did not stop; leaving it", what);
		g_thread_unref(t->thread);
		return false;
	}
	g_thread_join(t->thread);
	g_mutex_clear(&t->lock);
	g_cond_clear(&t->cond);
	return true;
}
