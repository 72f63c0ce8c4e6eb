/* ops_entry.c - names: lookup, forget, create objects, link, remove,
 * rename. */
#include "config.h"

#include "nslock.h"
#include "copyup.h"
#include "creds.h"
#include "attr.h"
#include "index.h"
#include "lookup.h"
#include "lower.h"
#include "objref.h"
#include "ops.h"
#include "readdir.h"
#include "reclaim.h"
#include "usage.h"
#include "whiteout.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sfs_fill_entry(struct sfs_fs *fs, struct sfs_node *n,
		    const struct stat *st, bool local_name,
		    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = sfs_nodeid(fs->table, n);
	e->attr = *st;
	e->attr_timeout = sfs_node_timeout(fs, n);
	/* A local name stays until the mount changes it.  A shared name of
	 * a file copied up under another name (a hardlink) is still the
	 * shared layer's to remove or replace. */
	e->entry_timeout = local_name ? sfs_local_timeout(fs) : fs->timeout;
	sfs_reclaim_note(fs->reclaim, n);
}

void sfs_reply_entry(fuse_req_t req, struct sfs_fs *fs, struct sfs_node *n,
		     const struct stat *st, bool local_name)
{
	struct fuse_entry_param e;
	sfs_fill_entry(fs, n, st, local_name, &e);
	if (fuse_reply_entry(req, &e) != 0)
		sfs_node_forget(fs->table, n, 1); /* the kernel never saw it */
}

void sfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_node *n;
	struct stat st;
	struct sfs_node *p = sfs_req_node(req, parent);
	bool local;
	int r = sfs_lookup(fs, p, name, &n, &st, &local);
	if (r == -ENOENT) {
		/* A negative entry the kernel may cache. */
		struct fuse_entry_param e = {
			.entry_timeout = sfs_negative_timeout(fs, p),
		};
		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0)
		sfs_reply_err(req, r);
	else
		sfs_reply_entry(req, fs, n, &st, local);
}

void sfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	sfs_node_forget(fs->table, sfs_req_node(req, ino), nlookup);
	fuse_reply_none(req);
}

void sfs_op_forget_multi(fuse_req_t req, size_t count,
			 struct fuse_forget_data *forgets)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	for (size_t i = 0; i < count; i++)
		sfs_node_forget(fs->table, sfs_req_node(req, forgets[i].ino),
				forgets[i].nlookup);
	fuse_reply_none(req);
}

void sfs_last_name_pin(struct sfs_fs *fs, int dirfd, const char *name,
		       struct sfs_last_name *ln)
{
	struct stat *st = &ln->st;
	ln->node = NULL;
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) != 0) {
		st->st_mode = 0;
		return;
	}
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1)
		return;
	struct sfs_node *n = sfs_table_find_upper(fs->table, st->st_ino, false);
	if (!n)
		return;
	sfs_node_ref(fs->table, n);
	ln->node = n;
	/* Without OPEN (no_open) an open file has no fd of ours: keep the
	 * inode reachable.  With OPEN, the open fd does that, and pinning
	 * would only delay freeing the space. */
	if (fs->no_open && g_atomic_int_get(&n->upper.fd) < 0) {
		int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		/* Published: another thread may pin it at the same time. */
		if (fd >= 0 && !g_atomic_int_compare_and_exchange(&n->upper.fd,
								  -1, fd))
			close(fd);
	}
}

void sfs_last_name_retire(struct sfs_fs *fs, struct sfs_last_name *ln,
			  bool removed)
{
	if (removed && ln->st.st_mode)
		sfs_usage_name_removed(fs, &ln->st);
	if (!ln->node)
		return;
	if (removed)
		sfs_table_unhash(fs->table, ln->node);
	sfs_node_unref(fs->table, ln->node);
}

/* 1 if dirfd/name exists and is not a whiteout, 0, or -errno. */
static int name_is_local(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return !sfs_is_whiteout_stat(&st);
	return errno == ENOENT ? 0 : -errno;
}

int sfs_shared_name_counts(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, struct sfs_node *n)
{
	if (!g_atomic_int_get(&n->indexed))
		return 0;
	int dirfd = sfs_node_upper(parent);
	int local = dirfd < 0 ? 0 : name_is_local(dirfd, name);
	return local < 0 ? local : !local;
}

/* A new object built in workdir got nothing from a set-group-ID parent
 * dirfd: give it the parent's group, and to a directory the bit too, as
 * creating it in place would have. */
static int inherit_setgid(int dirfd, int t, const char *tmp, bool is_dir)
{
	struct stat pst, st;
	if (fstat(dirfd, &pst) != 0 ||
	    fstatat(t, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	if (!(pst.st_mode & S_ISGID))
		return 0;
	if (fchownat(t, tmp, (uid_t)-1, pst.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return 0;
	/* chown cleared set-user-ID and set-group-ID: put the mode back */
	mode_t mode = (st.st_mode & 07777) | (is_dir ? S_ISGID : 0);
	return fchmodat(t, tmp, mode, 0) ? -errno : 0;
}

/* The name holds a whiteout: build the object in workdir and swap it in,
 * so the hidden shared entry never shows in between.  fresh: make
 * creates a new object (not a link to an existing one). */
static int create_over_whiteout(struct sfs_fs *fs, int dirfd,
				const char *name, bool is_dir, bool fresh,
				sfs_make_fn make, void *arg)
{
	char tmp[32];
	sfs_tmp_name(&fs->layers, tmp);
	int t = fs->layers.tmp_fd;
	int r = make(t, tmp, arg);
	if (r < 0)
		return r;
	if (fresh)
		r = inherit_setgid(dirfd, t, tmp, is_dir);
	if (r == 0 && is_dir)
		r = sfs_set_opaque_at(&fs->layers, t, tmp);
	if (r == 0 && renameat2(t, tmp, dirfd, name, RENAME_EXCHANGE) != 0)
		r = -errno;
	/* Now tmp holds the whiteout (or, on failure, the new object). */
	sfs_rmtree_at(t, tmp);
	return r;
}

/* A new object where a ".wh." marker hides a shared one: a directory
 * must not merge with the hidden one (opaque, else it goes again), then
 * the marker can go. */
static int cover_marker(struct sfs_fs *fs, int dirfd, const char *name,
			bool is_dir)
{
	int r = is_dir ? sfs_set_opaque_at(&fs->layers, dirfd, name) : 0;
	if (r < 0) {
		unlinkat(dirfd, name, AT_REMOVEDIR);
		return r;
	}
	sfs_wh_file_clear(dirfd, name);
	return 0;
}

int sfs_create_node(fuse_req_t req, struct sfs_node *parent, const char *name,
		    bool is_dir, sfs_make_fn make, void *arg,
		    struct sfs_node **out, struct stat *st)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	if (fs->read_only)
		return -EROFS;
	if (sfs_is_wh_name(name))
		return -EPERM; /* would read back as a whiteout */
	int r = sfs_copyup(fs, parent, SFS_COPY_META);
	if (r < 0)
		return r;
	/* One inode, and a block for a directory, until the real size is
	 * known (usage.h). */
	int64_t est = is_dir ? sfs_usage_round(1) : 0;
	r = sfs_usage_reserve(fs, est, 1);
	if (r < 0)
		return r;
	int dirfd = sfs_node_upper(parent);
	/* A fallback ".wh." marker hides the name below. */
	int marker = parent->lowerdirs ? sfs_has_wh_file(dirfd, name) : 0;
	struct sfs_creds c;
	sfs_creds_enter(req, &c);
	r = marker < 0 ? marker : make(dirfd, name, arg);
	int wh = r == -EEXIST ? sfs_is_whiteout_at(dirfd, name) : 0;
	if (wh < 0)
		r = wh;
	else if (wh)
		r = create_over_whiteout(fs, dirfd, name, is_dir, true, make,
					 arg);
	else if (r == 0 && marker)
		r = cover_marker(fs, dirfd, name, is_dir);
	if (r == 0 && (wh || marker))
		sfs_usage_add(fs, 0, -1); /* the whiteout or marker went */
	sfs_creds_leave(&c);
	if (r < 0) {
		sfs_usage_add(fs, -est, -1);
		return r;
	}
	bool opaque = is_dir && (wh || marker);
	r = sfs_lookup_created(fs, parent, name, opaque, out, st);
	sfs_usage_settle(fs, est, r == 0 ? st : NULL);
	return r;
}

struct make_args {
	mode_t mode;
	dev_t rdev;
	const char *target;
};

static int make_node(int dirfd, const char *name, void *arg)
{
	struct make_args *a = arg;
	return mknodat(dirfd, name, a->mode, a->rdev) ? -errno : 0;
}

static int make_dir(int dirfd, const char *name, void *arg)
{
	struct make_args *a = arg;
	return mkdirat(dirfd, name, a->mode) ? -errno : 0;
}

static int make_symlink(int dirfd, const char *name, void *arg)
{
	struct make_args *a = arg;
	return symlinkat(a->target, dirfd, name) ? -errno : 0;
}

static void create_and_reply(fuse_req_t req, fuse_ino_t parent,
			     const char *name, bool is_dir, sfs_make_fn make,
			     struct make_args *a)
{
	struct sfs_node *n;
	struct stat st;
	int r = sfs_create_node(req, sfs_req_node(req, parent), name, is_dir,
				make, a, &n, &st);
	if (r < 0)
		sfs_reply_err(req, r);
	else
		sfs_reply_entry(req, sfs_req_fs(req), n, &st, true);
}

void sfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, dev_t rdev)
{
	struct make_args a = { .mode = mode, .rdev = rdev };
	create_and_reply(req, parent, name, false, make_node, &a);
}

void sfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode)
{
	struct make_args a = { .mode = mode };
	create_and_reply(req, parent, name, true, make_dir, &a);
}

void sfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		    const char *name)
{
	struct make_args a = { .target = link };
	create_and_reply(req, parent, name, false, make_symlink, &a);
}

struct link_args {
	struct sfs_fs *fs;
	const struct sfs_obj *obj;
};

static int make_link(int dirfd, const char *name, void *arg)
{
	struct link_args *a = arg;
	return sfs_link_obj(&a->fs->layers, a->obj, dirfd, name);
}

static int do_link(fuse_req_t req, struct sfs_node *n,
		   struct sfs_node *newparent, const char *newname,
		   struct stat *st)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	if (S_ISDIR(n->type) || sfs_is_wh_name(newname))
		return -EPERM;
	if (fs->read_only)
		return -EROFS;
	/* A shared-only source gets a local copy first (metadata only when
	 * allowed), so both names are one local inode. */
	int r = sfs_copyup(fs, n, SFS_COPY_META);
	if (r == 0)
		r = sfs_copyup(fs, newparent, SFS_COPY_META);
	if (r < 0)
		return r;
	struct link_args a = { fs, &n->upper };
	int dirfd = sfs_node_upper(newparent);
	r = make_link(dirfd, newname, &a);
	int wh = r == -EEXIST ? sfs_is_whiteout_at(dirfd, newname) : 0;
	if (wh < 0)
		r = wh;
	else if (wh) {
		r = create_over_whiteout(fs, dirfd, newname, false, false,
					 make_link, &a);
		if (r == 0)
			sfs_usage_add(fs, 0, -1); /* the whiteout went */
	}
	if (r < 0)
		return r;
	sfs_count_add(&fs->counters.links, 1);
	sfs_node_lookup_inc(fs->table, n);
	r = sfs_node_getattr(fs, n, st);
	if (r < 0)
		sfs_node_forget(fs->table, n, 1);
	return r;
}

void sfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		 const char *newname)
{
	struct sfs_node *n = sfs_req_node(req, ino);
	struct stat st;
	int r = do_link(req, n, sfs_req_node(req, newparent), newname, &st);
	if (r < 0)
		sfs_reply_err(req, r);
	else
		sfs_reply_entry(req, sfs_req_fs(req), n, &st, true);
}

/* Remove parent/name from the merged view.  `n` is the visible node. */
static int remove_name(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, struct sfs_node *n)
{
	bool is_dir = S_ISDIR(n->type);
	int below = sfs_lower_visible(fs, parent, name);
	if (below < 0)
		return below;
	int r = sfs_copyup_shared_link(fs, n);
	/* Whiteouts inside a directory go with it, in one rename: counted
	 * now, gone once it is. */
	int gone = 0;
	if (r == 0 && is_dir)
		r = sfs_dir_check_empty(fs, n);
	if (r == 0 && is_dir && sfs_node_upper(n) >= 0)
		r = sfs_count_whiteouts(sfs_node_upper(n), &gone);
	if (r == 0 && below)
		r = sfs_copyup(fs, parent, SFS_COPY_META);
	int counts = r < 0 ? r : sfs_shared_name_counts(fs, parent, name, n);
	if (counts < 0)
		return counts;
	bool local = sfs_node_has_upper(n);
	/* A whiteout where nothing local was is a new inode. */
	r = local ? 0 : sfs_usage_reserve(fs, 0, 1);
	if (r == 0 && counts) {
		r = sfs_index_name_leaving(fs, n);
		if (r < 0 && !local)
			sfs_usage_add(fs, 0, -1);
	}
	if (r < 0)
		return r;
	int dirfd = sfs_node_upper(parent);
	char tmp[32];
	sfs_tmp_name(&fs->layers, tmp);
	if (!local) {
		/* The shared object stays, hidden: its node is done. */
		r = sfs_whiteout_made(fs, sfs_whiteout_create(&fs->layers,
							      dirfd, name));
		if (r == 0)
			sfs_table_unhash(fs->table, n);
	} else {
		struct sfs_last_name last;
		sfs_last_name_pin(fs, dirfd, name, &last);
		if (below) {
			/* One inode for another: nothing to reserve. */
			sfs_usage_add(fs, 0, 1);
			r = sfs_whiteout_made(fs, sfs_whiteout_replace(
						      &fs->layers, dirfd, name,
						      is_dir, tmp));
		} else {
			r = sfs_remove_at(&fs->layers, dirfd, name, is_dir, tmp);
		}
		sfs_last_name_retire(fs, &last, r == 0);
	}
	if (r == 0)
		sfs_usage_add(fs, 0, -gone);
	if (counts)
		sfs_index_name_left(fs, n, r == 0);
	return r;
}

static void remove_op(fuse_req_t req, fuse_ino_t parent, const char *name,
		      bool want_dir)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_node *p = sfs_req_node(req, parent);
	struct sfs_node *n;
	struct stat st;
	if (fs->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* A purely local directory (a venv) needs no layer logic: one
	 * syscall.  ENOTEMPTY may only mean leftover whiteouts inside a
	 * directory that was moved here; the full path below sorts it. */
	int dirfd = sfs_node_upper(p);
	if (dirfd >= 0 && !sfs_node_merges(p)) {
		struct sfs_last_name last;
		sfs_last_name_pin(fs, dirfd, name, &last);
		int e = unlinkat(dirfd, name, want_dir ? AT_REMOVEDIR : 0)
				? errno
				: 0;
		sfs_last_name_retire(fs, &last, e == 0);
		if (e != ENOTEMPTY) {
			fuse_reply_err(req, e);
			return;
		}
	}
	sfs_ns_lock(fs);
	int r = sfs_lookup(fs, p, name, &n, &st, NULL);
	if (r == 0) {
		if (want_dir && !S_ISDIR(n->type))
			r = -ENOTDIR;
		else if (!want_dir && S_ISDIR(n->type))
			r = -EISDIR;
		else
			r = remove_name(fs, p, name, n);
		sfs_node_forget(fs->table, n, 1);
	}
	sfs_ns_unlock(fs);
	fuse_reply_err(req, -r);
}

void sfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, false);
}

void sfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, true);
}
