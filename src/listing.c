/* listing.c - listings by inode and offset (see listing.h). */
#include "config.h"

#include "listing.h"
#include "notify.h"
#include "ops.h"
#include "reclaim.h"

/* Snapshots kept for readers that have not reached the end. */
#define MAX_LISTINGS 256
#define GEN_MASK 0x7fffffffu /* offsets stay positive */

struct sfs_listings {
	GMutex lock;
	GHashTable *by_gen;  /* gen -> struct sfs_listing */
	GQueue lru;          /* kept listings, most recently used first */
	guint32 next_gen;
};

struct sfs_listings *sfs_listings_new(void)
{
	struct sfs_listings *ls = g_new0(struct sfs_listings, 1);
	g_mutex_init(&ls->lock);
	ls->by_gen = g_hash_table_new(g_direct_hash, g_direct_equal);
	return ls;
}

static void listing_free(struct sfs_fs *fs, struct sfs_listing *l)
{
	sfs_dir_clear(&l->dir);
	sfs_node_unref(fs->table, l->dir.node);
	g_free(l);
}

void sfs_listings_free(struct sfs_listings *ls)
{
	if (!ls)
		return;
	/* Nodes go with the table: free only the snapshots. */
	GList *l;
	while ((l = g_queue_pop_head_link(&ls->lru))) {
		struct sfs_listing *li = l->data;
		sfs_dir_clear(&li->dir);
		g_free(li);
	}
	g_hash_table_destroy(ls->by_gen);
	g_mutex_clear(&ls->lock);
	g_free(ls);
}

/* Under ls->lock: take l out of the table; true if nobody reads it. */
static bool unkeep(struct sfs_listings *ls, struct sfs_listing *l)
{
	if (l->kept) {
		g_hash_table_remove(ls->by_gen, GUINT_TO_POINTER(l->gen));
		g_queue_unlink(&ls->lru, &l->lru);
		l->kept = false;
	}
	return l->refs == 0;
}

static struct sfs_listing *find(struct sfs_listings *ls, fuse_ino_t ino,
				guint32 gen)
{
	g_mutex_lock(&ls->lock);
	struct sfs_listing *l =
		g_hash_table_lookup(ls->by_gen, GUINT_TO_POINTER(gen));
	if (l && l->ino == ino) {
		l->refs++;
		g_queue_unlink(&ls->lru, &l->lru);
		g_queue_push_head_link(&ls->lru, &l->lru);
	} else {
		l = NULL;
	}
	g_mutex_unlock(&ls->lock);
	return l;
}

static void keep(struct sfs_fs *fs, struct sfs_listings *ls,
		 struct sfs_listing *l)
{
	struct sfs_listing *evicted = NULL;
	g_mutex_lock(&ls->lock);
	do {
		ls->next_gen = (ls->next_gen + 1) & GEN_MASK;
	} while (!ls->next_gen ||
		 g_hash_table_contains(ls->by_gen,
				       GUINT_TO_POINTER(ls->next_gen)));
	l->gen = ls->next_gen;
	l->refs = 1;
	l->kept = true;
	l->lru.data = l;
	g_hash_table_insert(ls->by_gen, GUINT_TO_POINTER(l->gen), l);
	g_queue_push_head_link(&ls->lru, &l->lru);
	if (ls->lru.length > MAX_LISTINGS) {
		struct sfs_listing *old = g_queue_peek_tail(&ls->lru);
		if (unkeep(ls, old))
			evicted = old;
	}
	g_mutex_unlock(&ls->lock);
	if (evicted)
		listing_free(fs, evicted);
}

static struct sfs_listing *snapshot(struct sfs_fs *fs, struct sfs_node *n,
				    fuse_ino_t ino, int *err)
{
	struct sfs_listing *l = g_new0(struct sfs_listing, 1);
	int r;
	for (int tries = 0; tries < 5; tries++) {
		r = sfs_dir_snapshot(fs, n, &l->dir);
		if (!sfs_reclaim_wait(fs->reclaim, r))
			break;
	}
	if (r < 0) {
		g_free(l);
		*err = r;
		return NULL;
	}
	sfs_node_ref(fs->table, n);
	l->ino = ino;
	keep(fs, fs->listings, l);
	/* The kernel keeps the listing: one that a shared layer feeds must
	 * be read again after `timeout`. */
	if (!sfs_node_local_listing(n))
		sfs_notifier_inval_after(fs->notifier, ino, fs->timeout);
	return l;
}

struct sfs_listing *sfs_listing_get(struct sfs_fs *fs, struct sfs_node *n,
				    fuse_ino_t ino, off_t off, size_t *pos,
				    int *err)
{
	guint32 gen = (guint32)((guint64)off >> 32) & GEN_MASK;
	size_t idx = off ? (size_t)((guint64)off & 0xffffffffu) : 0;
	struct sfs_listing *l = off ? find(fs->listings, ino, gen) : NULL;
	if (!l)
		l = snapshot(fs, n, ino, err);
	*pos = idx;
	return l;
}

void sfs_listing_put(struct sfs_fs *fs, struct sfs_listing *l, bool at_end)
{
	struct sfs_listings *ls = fs->listings;
	g_mutex_lock(&ls->lock);
	l->refs--;
	bool gone = at_end ? unkeep(ls, l) : (!l->kept && l->refs == 0);
	g_mutex_unlock(&ls->lock);
	if (gone)
		listing_free(fs, l);
}
