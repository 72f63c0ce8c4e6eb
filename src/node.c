/* node.c - the node table (see node.h).
 *
 * One mutex guards the two indexes and the reference counts.  It is held
 * only for hash probes and counter updates, never across a system call,
 * so it is not a hot-path bottleneck even with the multi-threaded loop.
 */
#include "config.h"

#include "node.h"

#include <malloc.h>
#include <unistd.h>

struct sfs_table {
	GMutex lock;           /* through table_lock()/table_unlock() */
	gpointer owner;        /* atomic: GThread holding it, for assertions */
	GHashTable *by_ino;    /* reported st_ino -> node */
	GHashTable *by_upper;  /* local layer inode number -> node */
	struct sfs_node *root;
	GQueue all;            /* every live node, hashed or retired */
	gint freed;            /* atomic: nodes freed since the last trim */
};

/* After the kernel forgets a venv's worth of nodes, the heap is mostly
 * free but glibc keeps it: hand it back once this many nodes went and
 * fewer than that are left. */
#define TRIM_AFTER 4096

static void table_lock(struct sfs_table *t)
{
	g_mutex_lock(&t->lock);
	g_atomic_pointer_set(&t->owner, g_thread_self());
}

static void table_unlock(struct sfs_table *t)
{
	g_atomic_pointer_set(&t->owner, NULL);
	g_mutex_unlock(&t->lock);
}

/* Debug builds (without NDEBUG) check that *_locked() callers hold the
 * table lock. */
static void assert_locked(struct sfs_table *t)
{
#ifndef NDEBUG
	if (g_atomic_pointer_get(&t->owner) != g_thread_self())
		g_error("node table lock not held");
#else
	(void)t;
#endif
}

static guint ino_hash(gconstpointer key)
{
	uint64_t v = *(const uint64_t *)key;
	return (guint)(v ^ (v >> 32));
}

static gboolean ino_equal(gconstpointer a, gconstpointer b)
{
	return *(const uint64_t *)a == *(const uint64_t *)b;
}

/* Keys point into the nodes.  Every insertion uses g_hash_table_replace(),
 * which also replaces the key: g_hash_table_insert() would keep the old
 * node's key pointer, left dangling once that node is freed. */
struct sfs_table *sfs_table_new(void)
{
	struct sfs_table *t = g_new0(struct sfs_table, 1);
	g_mutex_init(&t->lock);
	t->by_ino = g_hash_table_new(ino_hash, ino_equal);
	t->by_upper = g_hash_table_new(ino_hash, ino_equal);
	return t;
}

void sfs_obj_clear(struct sfs_obj *o)
{
	if (o->fd >= 0)
		close(o->fd);
	g_free(o->fh);
	o->fd = -1;
	o->fh = NULL;
}

void sfs_lowerdirs_free(GArray *dirs)
{
	if (!dirs)
		return;
	for (guint i = 0; i < dirs->len; i++)
		close(g_array_index(dirs, struct sfs_lowerdir, i).fd);
	g_array_free(dirs, TRUE);
}

static void node_free(struct sfs_node *n)
{
	sfs_obj_clear(&n->upper);
	sfs_obj_clear(&n->lower);
	sfs_lowerdirs_free(n->lowerdirs);
	g_mutex_clear(&n->cache_lock);
	g_free(n->lowerdata);
	g_free(n->name);
	g_free(n);
}

void sfs_table_free(struct sfs_table *t)
{
	/* At unmount the kernel may still hold nodes, retired ones too. */
	GList *l;
	while ((l = g_queue_pop_head_link(&t->all)))
		node_free(l->data);
	g_hash_table_destroy(t->by_ino);
	g_hash_table_destroy(t->by_upper);
	g_mutex_clear(&t->lock);
	g_free(t);
}

struct sfs_node *sfs_table_root(struct sfs_table *t)
{
	return t->root;
}

void sfs_table_set_root(struct sfs_table *t, struct sfs_node *root)
{
	t->root = root;
	root->all_link.data = root;
	g_queue_push_tail_link(&t->all, &root->all_link);
	root->nlookup = 1; /* never forgotten */
	root->hashed = true;
	g_hash_table_replace(t->by_ino, &root->ino, root);
	g_hash_table_replace(t->by_upper, &root->upper_real_ino, root);
}

struct sfs_node *sfs_node_from_id(struct sfs_table *t, fuse_ino_t id)
{
	return id == FUSE_ROOT_ID ? t->root : (struct sfs_node *)(uintptr_t)id;
}

static const struct sfs_obj no_obj = { .fd = -1 };

struct sfs_node *sfs_node_new(uint64_t ino, mode_t type,
			      struct sfs_obj *upper, struct sfs_obj *lower,
			      GArray *lowerdirs)
{
	struct sfs_node *n = g_new0(struct sfs_node, 1);
	n->ino = ino;
	n->type = type & S_IFMT;
	n->upper = upper ? *upper : no_obj;
	n->has_upper = upper != NULL;
	n->lower = lower ? *lower : no_obj;
	n->lowerdirs = lowerdirs;
	n->last_used = g_get_monotonic_time();
	g_mutex_init(&n->cache_lock);
	return n;
}

void sfs_node_free_unhashed(struct sfs_node *n)
{
	node_free(n);
}

static struct sfs_node *find_locked(struct sfs_table *t, GHashTable *h,
				    uint64_t key, bool lookup)
{
	assert_locked(t);
	struct sfs_node *n = g_hash_table_lookup(h, &key);
	if (n && lookup)
		n->nlookup++;
	return n;
}

struct sfs_node *sfs_table_find_ino(struct sfs_table *t, uint64_t ino,
				    bool lookup)
{
	table_lock(t);
	struct sfs_node *n = find_locked(t, t->by_ino, ino, lookup);
	table_unlock(t);
	return n;
}

struct sfs_node *sfs_table_find_upper(struct sfs_table *t, ino_t real,
				      bool lookup)
{
	table_lock(t);
	struct sfs_node *n = find_locked(t, t->by_upper, (uint64_t)real, lookup);
	table_unlock(t);
	return n;
}

struct sfs_node *sfs_table_insert(struct sfs_table *t, struct sfs_node *n,
				  struct sfs_node *parent, const char *name)
{
	table_lock(t);
	struct sfs_node *old = g_hash_table_lookup(t->by_ino, &n->ino);
	if (old) {
		old->nlookup++;
		table_unlock(t);
		node_free(n);
		return old;
	}
	n->nlookup = 1;
	n->hashed = true;
	n->all_link.data = n;
	g_queue_push_tail_link(&t->all, &n->all_link);
	n->parent = parent;
	n->name = g_strdup(name);
	if (parent)
		parent->refs++;
	g_hash_table_replace(t->by_ino, &n->ino, n);
	if (n->has_upper)
		g_hash_table_replace(t->by_upper, &n->upper_real_ino, n);
	table_unlock(t);
	return n;
}

void sfs_table_set_upper(struct sfs_table *t, struct sfs_node *n,
			 struct sfs_obj *upper, ino_t real)
{
	table_lock(t);
	n->upper_real_ino = real;
	n->upper = *upper;
	g_atomic_int_set(&n->has_upper, 1);
	if (n->hashed)
		g_hash_table_replace(t->by_upper, &n->upper_real_ino, n);
	table_unlock(t);
}

static void unhash_locked(struct sfs_table *t, struct sfs_node *n)
{
	assert_locked(t);
	if (!n->hashed || n == t->root)
		return;
	if (g_hash_table_lookup(t->by_ino, &n->ino) == n)
		g_hash_table_remove(t->by_ino, &n->ino);
	if (n->has_upper &&
	    g_hash_table_lookup(t->by_upper, &n->upper_real_ino) == n)
		g_hash_table_remove(t->by_upper, &n->upper_real_ino);
	n->hashed = false;
}

/* Drop n if nothing refers to it; returns its parent when that parent lost
 * its last reference too (the caller continues with it), else NULL. */
static struct sfs_node *maybe_drop_locked(struct sfs_table *t,
					  struct sfs_node *n, GSList **dead)
{
	if (n == t->root || n->nlookup || n->refs)
		return NULL;
	unhash_locked(t, n);
	g_queue_unlink(&t->all, &n->all_link);
	*dead = g_slist_prepend(*dead, n);
	struct sfs_node *p = n->parent;
	n->parent = NULL;
	if (p && --p->refs == 0)
		return p;
	return NULL;
}

static void drop_chain_locked(struct sfs_table *t, struct sfs_node *n,
			      GSList **dead)
{
	assert_locked(t);
	while (n)
		n = maybe_drop_locked(t, n, dead);
}

static void free_dead(struct sfs_table *t, GSList *dead)
{
	if (!dead)
		return;
	/* fds are closed outside the table lock. */
	gint n = (gint)g_slist_length(dead);
	g_slist_free_full(dead, (GDestroyNotify)node_free);
	gint freed = g_atomic_int_add(&t->freed, n) + n;
	if (freed < TRIM_AFTER)
		return;
	table_lock(t);
	guint live = g_queue_get_length(&t->all);
	table_unlock(t);
	if (live < (guint)freed &&
	    g_atomic_int_compare_and_exchange(&t->freed, freed, 0))
		malloc_trim(0);
}

bool sfs_table_is_hashed(struct sfs_table *t, struct sfs_node *n)
{
	table_lock(t);
	bool hashed = n->hashed;
	table_unlock(t);
	return hashed;
}

void sfs_table_unhash(struct sfs_table *t, struct sfs_node *n)
{
	table_lock(t);
	unhash_locked(t, n);
	table_unlock(t);
}

void sfs_node_lookup_inc(struct sfs_table *t, struct sfs_node *n)
{
	table_lock(t);
	n->nlookup++;
	table_unlock(t);
}

void sfs_node_forget(struct sfs_table *t, struct sfs_node *n, uint64_t count)
{
	GSList *dead = NULL;
	table_lock(t);
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	drop_chain_locked(t, n, &dead);
	table_unlock(t);
	free_dead(t, dead);
}

void sfs_node_ref(struct sfs_table *t, struct sfs_node *n)
{
	table_lock(t);
	n->refs++;
	table_unlock(t);
}

void sfs_node_unref(struct sfs_table *t, struct sfs_node *n)
{
	GSList *dead = NULL;
	table_lock(t);
	n->refs--;
	drop_chain_locked(t, n, &dead);
	table_unlock(t);
	free_dead(t, dead);
}

void sfs_node_set_name(struct sfs_table *t, struct sfs_node *n,
		       struct sfs_node *parent, const char *name)
{
	GSList *dead = NULL;
	table_lock(t);
	struct sfs_node *old = n->parent;
	parent->refs++;
	n->parent = parent;
	char *oldname = n->name;
	n->name = g_strdup(name);
	if (old && --old->refs == 0)
		drop_chain_locked(t, old, &dead);
	table_unlock(t);
	g_free(oldname);
	free_dead(t, dead);
}


int sfs_node_fds(const struct sfs_node *n, int *maxfd)
{
	int count = 0;
	*maxfd = -1;
	int fds[2] = { sfs_node_upper(n), n->lower.fd };
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0) {
			count++;
			*maxfd = MAX(*maxfd, fds[i]);
		}
	for (guint i = 0; n->lowerdirs && i < n->lowerdirs->len; i++) {
		count++;
		*maxfd = MAX(*maxfd, g_array_index(n->lowerdirs,
						   struct sfs_lowerdir, i).fd);
	}
	return count;
}

static int depth_locked(const struct sfs_node *n)
{
	int d = 0;
	for (; n->parent; n = n->parent)
		d++;
	return d;
}

GArray *sfs_table_prunable(struct sfs_table *t)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(struct sfs_prunable));
	table_lock(t);
	for (GList *l = t->all.head; l; l = l->next) {
		struct sfs_node *n = l->data;
		if (n == t->root || !n->hashed || !n->nlookup)
			continue;
		int maxfd;
		struct sfs_prunable p = {
			.id = sfs_nodeid(t, n),
			.parent = n->parent ? sfs_nodeid(t, n->parent) : 0,
			.last_used = __atomic_load_n(&n->last_used,
						     __ATOMIC_RELAXED),
			.fds = sfs_node_fds(n, &maxfd),
			.depth = depth_locked(n),
		};
		g_array_append_val(out, p);
	}
	table_unlock(t);
	return out;
}
