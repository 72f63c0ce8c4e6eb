/* fs.h - the mounted filesystem's state, shared by all modules. */
#pragma once

#include "counters.h"
#include "layers.h"
#include "node.h"

#include <fuse_lowlevel.h>

struct sfs_notifier;
struct sfs_reclaim;
struct sfs_pt;
struct sfs_listings;

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
	bool no_opendir; /* nor OPENDIR/RELEASEDIR (listing.h) */
	struct sfs_listings *listings;
	/* Changes to the namespace that span layers (sfs_ns_lock()).  Held
	 * exclusively by rename, whiteout-producing removals and the copy-up
	 * of a directory, of an object whose parents are not local yet or of
	 * a file with shared hardlinks; shared by the copy-up of one object
	 * into a local parent, which then only excludes copy-ups of the same
	 * inode (copy_stripes); nslock.h.  Lookups, reads, writes, getattr and links of
	 * local files never take it. */
	GRWLock ns_lock;
#define SFS_COPY_STRIPES 64
	GMutex copy_stripes[SFS_COPY_STRIPES];
	struct fuse_session *se;
	struct sfs_notifier *notifier; /* NULL until the session runs */
	struct sfs_reclaim *reclaim;   /* NULL until the session runs */
	struct sfs_pt *pt;             /* passthrough opens (passthrough.c) */
	/* Directory handles the kernel has not released: an unmount while a
	 * directory is open skips RELEASEDIR, so they are freed at the end. */
	GMutex dirs_lock;
	GQueue open_dirs;
};

/* Set up layers, root node; false with err set on failure. */
bool sfs_fs_init(struct sfs_fs *fs, const struct sfs_config *cfg,
		 GError **err);
void sfs_fs_destroy(struct sfs_fs *fs);

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
