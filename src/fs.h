/* fs.h - the mounted filesystem's state, shared by all modules. */
#pragma once

#include "counters.h"
#include "layers.h"
#include "node.h"

#include <fuse_lowlevel.h>

struct sfs_notifier;
struct sfs_reclaim;

struct sfs_config;

struct sfs_fs {
	struct sfs_layers layers;
	struct sfs_counters counters;
	char *mountpoint;
	guint64 upper_limit;  /* bytes the local layer may hold, 0 = any */
	guint64 inode_limit;  /* inodes it may hold, 0 = any */
	struct sfs_table *table;
	double timeout;
	bool metacopy;
	bool read_only;
	bool writeback;
	bool no_open;  /* the kernel sends no OPEN/RELEASE (ops_file.c) */
	/* Serialises changes to the namespace that span layers: copy-up,
	 * rename, and whiteout-producing removals.  Lookups, reads, writes,
	 * getattr and links of local files never take it. */
	GRecMutex ns_lock;     /* through sfs_ns_lock()/sfs_ns_unlock() */
	gpointer ns_owner;     /* atomic: GThread holding it, for assertions */
	int ns_depth;          /* its recursion depth; owner only */
	struct fuse_session *se;
	struct sfs_notifier *notifier; /* NULL until the session runs */
	struct sfs_reclaim *reclaim;   /* NULL until the session runs */
	/* Directory handles the kernel has not released: an unmount while a
	 * directory is open skips RELEASEDIR, so they are freed at the end. */
	GMutex dirs_lock;
	GQueue open_dirs;
};

/* Set up layers, root node; false with err set on failure. */
bool sfs_fs_init(struct sfs_fs *fs, const struct sfs_config *cfg,
		 GError **err);
void sfs_fs_destroy(struct sfs_fs *fs);

/* The namespace lock (recursive).  It records its owner so that debug
 * builds (without NDEBUG) can assert it is held. */
static inline void sfs_ns_lock(struct sfs_fs *fs)
{
	g_rec_mutex_lock(&fs->ns_lock);
	if (fs->ns_depth++ == 0)
		g_atomic_pointer_set(&fs->ns_owner, g_thread_self());
}

static inline void sfs_ns_unlock(struct sfs_fs *fs)
{
	if (--fs->ns_depth == 0)
		g_atomic_pointer_set(&fs->ns_owner, NULL);
	g_rec_mutex_unlock(&fs->ns_lock);
}

static inline void sfs_assert_ns_held(struct sfs_fs *fs)
{
#ifndef NDEBUG
	if (g_atomic_pointer_get(&fs->ns_owner) != g_thread_self())
		g_error("namespace lock not held");
#else
	(void)fs;
#endif
}

static inline struct sfs_fs *sfs_req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct sfs_node *sfs_req_node(fuse_req_t req, fuse_ino_t id)
{
	struct sfs_node *n = sfs_node_from_id(sfs_req_fs(req)->table, id);
	sfs_node_touch(n);
	return n;
}
