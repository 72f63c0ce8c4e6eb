/* node.h - the node table: FUSE nodeids, lookup counts, st_ino identity.
 *
 * One node per file, whatever the number of its names: the table is keyed
 * by the reported st_ino, so all names of a hardlinked file meet in one
 * node, one nodeid, one st_ino.
 *
 * st_ino = (layer index << 56) | real inode number, where the layer and
 * inode are those of the object's origin: the shared-layer file it was
 * copied up from (kept in the scratchfs.ino xattr), or the local file
 * itself.  So st_ino is unique across layers on different filesystems and
 * survives copy-up and remount.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/stat.h>

#define SFS_INO_LAYER_SHIFT 56
#define SFS_INO_MASK ((UINT64_C(1) << SFS_INO_LAYER_SHIFT) - 1)

static inline uint64_t sfs_make_ino(int layer, ino_t real)
{
	/* Inode numbers past 2^56 are folded, not truncated, to keep
	 * collisions between such files unlikely. */
	uint64_t r = (uint64_t)real;
	r = (r & SFS_INO_MASK) ^ (r >> SFS_INO_LAYER_SHIFT);
	return ((uint64_t)layer << SFS_INO_LAYER_SHIFT) | r;
}

/* One real object in one layer.  Directories keep an O_PATH fd (they are
 * the dirfd of every *at() call below them).  Other objects keep a file
 * handle where the layer's filesystem has them and the daemon may open by
 * handle (root): a venv holds tens of thousands of files, more than the
 * fd limit allows.  Otherwise they too keep an O_PATH fd. */
struct sfs_obj {
	int fd;                  /* O_PATH, or -1 */
	struct file_handle *fh;  /* or NULL */
	int layer;               /* 0 local, 1..n shared */
};

static inline bool sfs_obj_valid(const struct sfs_obj *o)
{
	return o->fd >= 0 || o->fh;
}

/* A directory of a shared layer that merges into a node's directory. */
struct sfs_lowerdir {
	int fd;     /* O_PATH */
	int layer;  /* 1..n */
};

/* Close every fd of an array of struct sfs_lowerdir and free it (NULL is
 * fine).  The arrays are built by lower.c. */
void sfs_lowerdirs_free(GArray *dirs);

struct sfs_node {
	uint64_t ino;          /* reported st_ino; immutable */
	mode_t type;           /* S_IFMT bits; immutable */

	/* Protected by the table lock (outside node.c, read hashed through
	 * sfs_table_is_hashed()). */
	uint64_t nlookup;      /* kernel references */
	uint64_t refs;         /* internal: children, open handles */
	bool hashed;           /* findable by st_ino / local inode */
	gint64 last_used;      /* monotonic µs of the last request (relaxed) */
	GList all_link;        /* in the table's list of every live node */

	/* Filled once (under the namespace lock and the table lock), then
	 * published by has_upper (atomic); never changed afterwards, but for
	 * upper.fd, which may go once from -1 to an fd (compare-and-swap;
	 * read it atomically) to pin an inode whose last name goes (ops.h). */
	struct sfs_obj upper;  /* the local object */
	gint has_upper;
	ino_t upper_real_ino;

	/* Immutable after creation (lowerdata: set with metacopy). */
	struct sfs_obj lower;  /* the topmost shared object (data source) */
	char *lowerdata;       /* metacopy: data's path in layer lower.layer */
	bool data_lost;        /* metacopy whose shared data is gone: EIO */
	GArray *lowerdirs;     /* directories only: struct sfs_lowerdir */

	/* Set before the node is published; afterwards changed only by
	 * rename, which holds both the namespace lock and the table lock.
	 * Read them holding either (copy-up and removal read them under the
	 * namespace lock, reclaim under the table lock). */
	struct sfs_node *parent; /* holds a ref; NULL for the root */
	char *name;

	gint metacopy;         /* atomic: local copy holds metadata only */
	gint opaque;           /* atomic: directory hides the layers below */
	gint indexed;          /* atomic: local inode also linked in index/ */
	gint lower_pending;    /* atomic: indexed: shared names not yet local */

	/* Page-cache validity: the data file as last seen (at open; at
	 * getattr for a metadata copy, and without OPEN for a shared file;
	 * attr.c).  All under cache_lock. */
	GMutex cache_lock;
	struct timespec cached_mtime;
	struct timespec cached_ctime;
	off_t cached_size;
	ino_t cached_ino;
	bool cache_valid;
};

static inline bool sfs_node_has_upper(const struct sfs_node *n)
{
	return g_atomic_int_get(&n->has_upper);
}

/* A directory whose listing and names include shared directories below
 * it (not opaque). */
static inline bool sfs_node_merges(const struct sfs_node *n)
{
	return n->lowerdirs && n->lowerdirs->len &&
	       !g_atomic_int_get(&n->opaque);
}

/* The local directory fd of a directory node, -1 if not copied up. */
static inline int sfs_node_upper(const struct sfs_node *n)
{
	return sfs_node_has_upper(n) ? g_atomic_int_get(&n->upper.fd) : -1;
}

/* The object that currently wins (local if present), and the one that
 * holds the data (the shared one while only metadata was copied). */
static inline const struct sfs_obj *sfs_node_obj(const struct sfs_node *n)
{
	return sfs_node_has_upper(n) ? &n->upper : &n->lower;
}

static inline const struct sfs_obj *sfs_node_data_obj(const struct sfs_node *n)
{
	if (!sfs_node_has_upper(n) ||
	    (g_atomic_int_get(&n->metacopy) && sfs_obj_valid(&n->lower)))
		return &n->lower;
	return &n->upper;
}

/* Everything a request on n reads is in the local layer: it is local,
 * merges no shared directory and holds its own data. */
static inline bool sfs_node_local_only(const struct sfs_node *n)
{
	return sfs_node_has_upper(n) && !sfs_node_merges(n) &&
	       sfs_node_data_obj(n) == &n->upper;
}

void sfs_obj_clear(struct sfs_obj *o);

/* Record a use of n, for reclaim.c's least-recently-used order. */
static inline void sfs_node_touch(struct sfs_node *n)
{
	__atomic_store_n(&n->last_used, g_get_monotonic_time(),
			 __ATOMIC_RELAXED);
}

/* How many fds n holds; *maxfd gets the highest of them (-1 if none). */
int sfs_node_fds(const struct sfs_node *n, int *maxfd);

struct sfs_table;

struct sfs_table *sfs_table_new(void);
void sfs_table_free(struct sfs_table *t);

/* The root node (nodeid FUSE_ROOT_ID). */
struct sfs_node *sfs_table_root(struct sfs_table *t);
void sfs_table_set_root(struct sfs_table *t, struct sfs_node *root);

static inline fuse_ino_t sfs_nodeid(struct sfs_table *t, struct sfs_node *n)
{
	return n == sfs_table_root(t) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

struct sfs_node *sfs_node_from_id(struct sfs_table *t, fuse_ino_t id);

/* Allocate an unhashed node; takes ownership of the objects (which may be
 * NULL) and lowerdirs. */
struct sfs_node *sfs_node_new(uint64_t ino, mode_t type,
			      struct sfs_obj *upper, struct sfs_obj *lower,
			      GArray *lowerdirs);

/* Free a node that was never inserted (sfs_node_new, failed setup). */
void sfs_node_free_unhashed(struct sfs_node *n);

/* Find by st_ino / by the local layer's inode number; NULL if absent.
 * A found node gets one more lookup reference when `lookup` is true. */
struct sfs_node *sfs_table_find_ino(struct sfs_table *t, uint64_t ino,
				    bool lookup);
struct sfs_node *sfs_table_find_upper(struct sfs_table *t, ino_t real,
				      bool lookup);

/* Insert n (lookup count 1, parent ref taken) unless a node with the same
 * st_ino appeared meanwhile: then n is freed and the existing node is
 * returned with one more lookup reference. */
struct sfs_node *sfs_table_insert(struct sfs_table *t, struct sfs_node *n,
				  struct sfs_node *parent, const char *name);

/* Record that n now has a local object (after copy-up); takes it over. */
void sfs_table_set_upper(struct sfs_table *t, struct sfs_node *n,
			 struct sfs_obj *upper, ino_t real);

void sfs_node_lookup_inc(struct sfs_table *t, struct sfs_node *n);
void sfs_node_forget(struct sfs_table *t, struct sfs_node *n, uint64_t count);
void sfs_node_ref(struct sfs_table *t, struct sfs_node *n);
void sfs_node_unref(struct sfs_table *t, struct sfs_node *n);

/* n's local inode died (its last name was removed): lookups must never
 * find it again, even when the filesystem reuses the inode number.  The
 * node lives on while the kernel holds it. */
void sfs_table_unhash(struct sfs_table *t, struct sfs_node *n);

/* Is n still findable (not removed through the mount)? */
bool sfs_table_is_hashed(struct sfs_table *t, struct sfs_node *n);

/* A node the kernel holds, as reclaim.c sees it. */
struct sfs_prunable {
	uint64_t id;        /* nodeid; may be stale by the time it is used */
	uint64_t parent;    /* the parent's nodeid */
	gint64 last_used;
	int fds;
	int depth;          /* names between it and the root */
};

/* Every hashed node but the root that the kernel holds. */
GArray *sfs_table_prunable(struct sfs_table *t);

/* Move n under a new parent/name (rename): the caller holds the namespace
 * lock, this takes the table lock. */
void sfs_node_set_name(struct sfs_table *t, struct sfs_node *n,
		       struct sfs_node *parent, const char *name);
