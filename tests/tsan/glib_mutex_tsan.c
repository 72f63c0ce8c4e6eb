/* glib_mutex_tsan.c - linked into the ThreadSanitizer build only (see
 * run.sh): tells TSan about GMutex and GAsyncQueue.
 *
 * On Linux glib implements GMutex with raw futex calls, which TSan does
 * not see, so every field guarded by a GMutex would be reported as a
 * race.  These definitions take precedence over glib's for the calls made
 * by scratchfs itself; each calls glib's and reports the lock and unlock
 * through TSan's mutex annotations.  (GRecMutex and GRWLock are pthread
 * objects inside glib: TSan already sees them.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glib.h>
#include <sanitizer/tsan_interface.h>

typedef void (*mutex_fn)(GMutex *);
typedef gboolean (*trylock_fn)(GMutex *);
typedef void (*wait_fn)(GCond *, GMutex *);
typedef gboolean (*wait_until_fn)(GCond *, GMutex *, gint64);

static mutex_fn next_lock, next_unlock;
static trylock_fn next_trylock;
static wait_fn next_wait;
static wait_until_fn next_wait_until;

__attribute__((constructor)) static void resolve(void)
{
	next_lock = (mutex_fn)dlsym(RTLD_NEXT, "g_mutex_lock");
	next_unlock = (mutex_fn)dlsym(RTLD_NEXT, "g_mutex_unlock");
	next_trylock = (trylock_fn)dlsym(RTLD_NEXT, "g_mutex_trylock");
	next_wait = (wait_fn)dlsym(RTLD_NEXT, "g_cond_wait");
	next_wait_until = (wait_until_fn)dlsym(RTLD_NEXT, "g_cond_wait_until");
}

void g_mutex_lock(GMutex *m)
{
	__tsan_mutex_pre_lock(m, 0);
	next_lock(m);
	__tsan_mutex_post_lock(m, 0, 0);
}

gboolean g_mutex_trylock(GMutex *m)
{
	__tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
	gboolean ok = next_trylock(m);
	__tsan_mutex_post_lock(m, __tsan_mutex_try_lock |
				       (ok ? 0 : __tsan_mutex_try_lock_failed),
			       0);
	return ok;
}

void g_mutex_unlock(GMutex *m)
{
	__tsan_mutex_pre_unlock(m, 0);
	next_unlock(m);
	__tsan_mutex_post_unlock(m, 0);
}

/* A wait releases the mutex and takes it again inside glib. */
static void released(GMutex *m)
{
	__tsan_mutex_pre_unlock(m, 0);
	__tsan_mutex_post_unlock(m, 0);
}

static void retaken(GMutex *m)
{
	__tsan_mutex_pre_lock(m, 0);
	__tsan_mutex_post_lock(m, 0, 0);
}

void g_cond_wait(GCond *c, GMutex *m)
{
	released(m);
	next_wait(c, m);
	retaken(m);
}

gboolean g_cond_wait_until(GCond *c, GMutex *m, gint64 end)
{
	released(m);
	gboolean ok = next_wait_until(c, m, end);
	retaken(m);
	return ok;
}

/* GAsyncQueue locks its own GMutex inside glib, out of reach of the
 * wrappers above, so an item handed from producer to consumer (loop.c's
 * requests, notify.c's invalidations) looked like a race on everything it
 * points to.  A push releases the queue and a pop acquires it: the
 * happens-before edge the queue's lock really gives. */
typedef void (*push_fn)(GAsyncQueue *, gpointer);
typedef gpointer (*pop_fn)(GAsyncQueue *);
typedef gpointer (*timeout_pop_fn)(GAsyncQueue *, guint64);

static push_fn next_push, next_push_front;
static pop_fn next_pop, next_try_pop;
static timeout_pop_fn next_timeout_pop;

__attribute__((constructor)) static void resolve_queue(void)
{
	next_push = (push_fn)dlsym(RTLD_NEXT, "g_async_queue_push");
	next_push_front = (push_fn)dlsym(RTLD_NEXT, "g_async_queue_push_front");
	next_pop = (pop_fn)dlsym(RTLD_NEXT, "g_async_queue_pop");
	next_try_pop = (pop_fn)dlsym(RTLD_NEXT, "g_async_queue_try_pop");
	next_timeout_pop =
		(timeout_pop_fn)dlsym(RTLD_NEXT, "g_async_queue_timeout_pop");
}

void g_async_queue_push(GAsyncQueue *q, gpointer item)
{
	__tsan_release(q);
	next_push(q, item);
}

void g_async_queue_push_front(GAsyncQueue *q, gpointer item)
{
	__tsan_release(q);
	next_push_front(q, item);
}

gpointer g_async_queue_pop(GAsyncQueue *q)
{
	gpointer item = next_pop(q);
	__tsan_acquire(q);
	return item;
}

gpointer g_async_queue_try_pop(GAsyncQueue *q)
{
	gpointer item = next_try_pop(q);
	__tsan_acquire(q);
	return item;
}

gpointer g_async_queue_timeout_pop(GAsyncQueue *q, guint64 timeout)
{
	gpointer item = next_timeout_pop(q, timeout);
	__tsan_acquire(q);
	return item;
}
