/* attr.c - the attributes a node reports, and its shared data
 * (see attr.h). */
#include "config.h"

#include "attr.h"
#include "health.h"
#include "index.h"
#include "notify.h"
#include "objref.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Without OPEN (no_open) the kernel keeps a file's pages as long as size
 * and mtime stay; a shared file rewritten in place with its mtime put back
 * (cp -p, rsync) needs a word from us.  Local files change only through
 * the mount, so the kernel knows. */
static void watch_shared_data(struct sfs_fs *fs, struct sfs_node *n,
			      const struct stat *st)
{
	if (fs->no_open && S_ISREG(st->st_mode) && !sfs_node_has_upper(n) &&
	    sfs_node_data_changed(n, st))
		sfs_notifier_inval(fs->notifier, sfs_nodeid(fs->table, n));
}

/* Has the data file changed since last seen?  Records what it saw;
 * *seen_before: whether there was something to compare with. */
static bool data_changed(struct sfs_node *n, const struct stat *data,
			 bool *seen_before)
{
	g_mutex_lock(&n->cache_lock);
	/* ctime too: cp -p, tar and rsync put the old mtime back. */
	bool changed = !n->cache_valid || n->cached_size != data->st_size ||
		       n->cached_ino != data->st_ino ||
		       n->cached_mtime.tv_sec != data->st_mtim.tv_sec ||
		       n->cached_mtime.tv_nsec != data->st_mtim.tv_nsec ||
		       n->cached_ctime.tv_sec != data->st_ctim.tv_sec ||
		       n->cached_ctime.tv_nsec != data->st_ctim.tv_nsec;
	bool seen = n->cache_valid;
	n->cached_size = data->st_size;
	n->cached_mtime = data->st_mtim;
	n->cached_ctime = data->st_ctim;
	n->cached_ino = data->st_ino;
	n->cache_valid = true;
	g_mutex_unlock(&n->cache_lock);
	*seen_before = seen;
	return changed;
}

bool sfs_node_data_changed(struct sfs_node *n, const struct stat *data)
{
	bool seen;
	return data_changed(n, data, &seen) && seen;
}

bool sfs_node_data_unchanged(struct sfs_node *n, const struct stat *data)
{
	bool seen;
	return !data_changed(n, data, &seen) && seen;
}

static void metacopy_size(struct sfs_fs *fs, struct sfs_node *n,
			  struct stat *st)
{
	/* Data, and so size, still come from the shared file. */
	struct stat lst;
	if (sfs_node_stat_lowerdata(fs, n, &lst) == 0) {
		/* The local mtime stays: the kernel would keep stale pages. */
		if (sfs_node_data_changed(n, &lst))
			sfs_notifier_inval(fs->notifier, sfs_nodeid(fs->table, n));
		st->st_size = lst.st_size;
		st->st_blocks = lst.st_blocks;
	}
}

/* The attributes of n from a stat of its winning object. */
void sfs_node_attrs(struct sfs_fs *fs, struct sfs_node *n, struct stat *st)
{
	watch_shared_data(fs, n, st);
	st->st_ino = n->ino;
	if (g_atomic_int_get(&n->indexed))
		st->st_nlink = sfs_index_nlink(n, st->st_nlink);
	if (g_atomic_int_get(&n->metacopy) && sfs_obj_valid(&n->lower))
		metacopy_size(fs, n, st);
}

int sfs_node_getattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *st)
{
	const struct sfs_obj *o = sfs_node_obj(n);
	SFS_AUTOFD f = sfs_obj_get(&fs->layers, o);
	int r = f.fd < 0 ? f.fd : 0;
	if (r == 0 && fstatat(f.fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		r = -errno;
	sfs_health_note(o->layer, r);
	if (r == 0)
		sfs_node_attrs(fs, n, st);
	return r;
}

/* A metacopy's data is found by its path in the shared layer, so a shared
 * file replaced by rename (git checkout, an editor) shows through; the
 * handle kept since lookup is the fallback when the path is gone. */
int sfs_node_open_lowerdata(struct sfs_fs *fs, struct sfs_node *n, int flags)
{
	if (!sfs_obj_valid(&n->lower))
		return -EIO; /* a metadata copy whose data is gone */
	int r = -ENOENT;
	if (n->lowerdata) {
		int lfd = fs->layers.lower[n->lower.layer - 1].fd;
		int fd = openat(lfd, n->lowerdata, flags | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
			fd = openat(lfd, n->lowerdata,
				    (flags & ~O_NOATIME) | O_NOFOLLOW | O_CLOEXEC);
		r = fd < 0 ? -errno : fd;
	}
	if (r == -ENOENT)
		r = sfs_obj_open(&fs->layers, &n->lower, flags);
	sfs_health_note(n->lower.layer, r);
	return r;
}

int sfs_node_stat_lowerdata(struct sfs_fs *fs, struct sfs_node *n,
			    struct stat *st)
{
	if (!sfs_obj_valid(&n->lower))
		return -EIO; /* a metadata copy whose data is gone */
	if (n->lowerdata &&
	    fstatat(fs->layers.lower[n->lower.layer - 1].fd, n->lowerdata, st,
		    AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	SFS_AUTOFD low = sfs_obj_get(&fs->layers, &n->lower);
	if (low.fd < 0)
		return low.fd;
	return fstatat(low.fd, "", st, AT_EMPTY_PATH) ? -errno : 0;
}
