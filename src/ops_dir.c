/* ops_dir.c - directory handles: opendir, readdir(plus), releasedir,
 * fsyncdir.  The listing itself is built by readdir.c; without OPENDIR
 * (no_opendir) listings are found by inode and offset (listing.c). */
#include "config.h"

#include "listing.h"
#include "lookup.h"
#include "ops.h"
#include "sys.h"
#include "readdir.h"
#include "reclaim.h"

#include <fcntl.h>
#include <unistd.h>

static void close_dir(struct sfs_fs *fs, struct sfs_dir *d)
{
	struct sfs_node *n = d->node;
	g_mutex_lock(&fs->dirs_lock);
	g_queue_unlink(&fs->open_dirs, &d->link);
	g_mutex_unlock(&fs->dirs_lock);
	sfs_dir_clear(d);
	g_free(d);
	sfs_node_unref(fs->table, n);
}

void sfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	if (fs->no_opendir) {
		/* From now on the kernel sends none (listing.h). */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	struct sfs_node *n = sfs_req_node(req, ino);
	struct sfs_dir *d = g_new0(struct sfs_dir, 1);
	int r;
	SFS_RECLAIM_RETRY(fs->reclaim, r, sfs_dir_snapshot(fs, n, d), false);
	if (r < 0) {
		g_free(d);
		sfs_reply_err(req, r);
		return;
	}
	sfs_node_ref(fs->table, n);
	d->link.data = d;
	g_mutex_lock(&fs->dirs_lock);
	g_queue_push_tail_link(&fs->open_dirs, &d->link);
	g_mutex_unlock(&fs->dirs_lock);
	fi->fh = (uintptr_t)d;
	/* A listing only the kernel can change: it may keep it across
	 * opens, and drops it itself when it changes the directory. */
	fi->cache_readdir = fi->keep_cache = sfs_node_local_listing(n);
	if (fuse_reply_open(req, fi) != 0)
		close_dir(fs, d);
}

static bool is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* Add one entry to buf; returns its size, or 0 if it did not fit.  For
 * readdirplus the entry is looked up, and the lookup undone if the entry
 * does not fit (the kernel only counts what it receives).  While fds are
 * being reclaimed, entries go without a node: the kernel looks them up
 * when they are used. */
static size_t add_entry(fuse_req_t req, struct sfs_fs *fs, struct sfs_dir *d,
			struct sfs_dirent *e, char *buf, size_t room,
			off_t next, bool plus)
{
	struct stat st = { .st_ino = e->ino, .st_mode = (mode_t)e->type << 12 };
	if (!plus)
		return fuse_add_direntry(req, buf, room, e->name, &st, next);
	struct fuse_entry_param ep = { .attr = st };
	struct sfs_node *n = NULL;
	bool local;
	if (!is_dot(e->name) && !sfs_reclaim_busy(fs->reclaim) &&
	    sfs_lookup(fs, d->node, e->name, &n, &st, &local) == 0)
		sfs_fill_entry(fs, n, &st, local, &ep);
	size_t len = fuse_add_direntry_plus(req, buf, room, e->name, &ep, next);
	if (len > room && n)
		sfs_node_forget(fs->table, n, 1);
	return len;
}

/* Fill a reply from entry `pos` of d; true if it holds the last one. */
static bool fill(fuse_req_t req, struct sfs_dir *d, guint32 gen, size_t pos,
		 size_t size, bool plus)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	g_autofree char *buf = g_malloc(size);
	size_t used = 0, i;
	for (i = pos; i < d->entries->len; i++) {
		struct sfs_dirent *e =
			&g_array_index(d->entries, struct sfs_dirent, i);
		size_t len = add_entry(req, fs, d, e, buf + used, size - used,
				       sfs_listing_offset(gen, i), plus);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	return i >= d->entries->len;
}

/* Without a handle (no_opendir): the listing the offset names. */
static void readdir_by_offset(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, bool plus)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	size_t pos;
	int r;
	struct sfs_listing *l = sfs_listing_get(fs, sfs_req_node(req, ino), ino,
						off, &pos, &r);
	if (!l) {
		sfs_reply_err(req, r);
		return;
	}
	bool end = fill(req, &l->dir, l->gen, pos, size, plus);
	sfs_listing_put(fs, l, end && pos >= l->dir.entries->len);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_dir *d = (struct sfs_dir *)(uintptr_t)fi->fh;
	if (!d) {
		readdir_by_offset(req, ino, size, off, plus);
		return;
	}
	if (off == 0 && d->served) {
		/* rewinddir(): take a fresh snapshot.  (The first READDIR
		 * uses the one opendir took.) */
		struct sfs_node *n = d->node;
		sfs_dir_clear(d);
		int r = sfs_dir_snapshot(fs, n, d);
		if (r < 0) {
			sfs_reply_err(req, r);
			return;
		}
	}
	d->served = true;
	fill(req, d, 0, (size_t)off, size, plus);
}

void sfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void sfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void sfs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (fi->fh)
		close_dir(sfs_req_fs(req), (struct sfs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void sfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	int upper = sfs_node_upper(sfs_req_node(req, ino));
	if (upper < 0) {
		fuse_reply_err(req, 0); /* nothing local to flush */
		return;
	}
	int fd = sfs_reopen(upper, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		sfs_reply_err(req, fd);
		return;
	}
	int r = datasync ? fdatasync(fd) : fsync(fd);
	int e = r ? errno : 0;
	close(fd);
	fuse_reply_err(req, e);
}
