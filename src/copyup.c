/* copyup.c - bring a shared-layer object into the local layer
 * (see copyup.h). */
#include "config.h"

#include "nslock.h"
#include "copyup.h"
#include "log.h"
#include "index.h"
#include "attr.h"
#include "lookup.h"
#include "lower.h"
#include "objref.h"
#include "readdir.h"
#include "usage.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* copy_object()'s answer when it needs the namespace lock exclusively;
 * never returned to a caller of sfs_copyup(). */
#define NEED_EXCLUSIVE (-EDEADLK)

bool sfs_node_has_lower(const struct sfs_node *n)
{
	if (S_ISDIR(n->type))
		return n->lowerdirs && n->lowerdirs->len;
	return sfs_obj_valid(&n->lower);
}

/* One object on its way up, carried through the stages: build in
 * workdir/work, attributes, rename into place, publish in the node (the
 * kernel overlayfs's struct ovl_copy_up_ctx). */
struct copy_up {
	struct sfs_fs *fs;
	struct sfs_node *n;
	enum sfs_copy_mode mode;
	int low;          /* O_PATH on the shared object */
	struct stat st;   /* its attributes */
	char tmp[32];     /* the copy's name in workdir/work while built */
	int obj;          /* O_PATH on the copy once built, or -1 */
	struct stat ust;  /* the copy's attributes, once built */
	bool meta;        /* built as metadata only: the data stays below */
	bool indexed;     /* a shared hardlink: the copy is indexed too */
};

/* Copy `size` bytes: reflink where the filesystem can (the refusal is
 * remembered), then copy_file_range, then read/write. */
static int copy_data(struct sfs_layers *l, int src, int dst, off_t size)
{
	if (l->can_clone != 0) {
		if (ioctl(dst, FICLONE, src) == 0) {
			l->can_clone = 1;
			return 0;
		}
		l->can_clone = 0;
	}
	off_t done = 0;
	while (done < size) {
		ssize_t n = copy_file_range(src, NULL, dst, NULL, size - done, 0);
		if (n == 0)
			break; /* shared file shrank meanwhile */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != EINVAL &&
			    errno != ENOSYS && errno != EOPNOTSUPP)
				return -errno;
			break;
		}
		done += n;
	}
	char buf[1 << 16];
	while (done < size) {
		ssize_t n = pread(src, buf, sizeof(buf), done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		for (ssize_t w = 0; w < n;) {
			ssize_t k = pwrite(dst, buf + w, n - w, done + w);
			if (k < 0 && errno != EINTR)
				return -errno;
			w += k > 0 ? k : 0;
		}
		done += n;
	}
	return 0;
}

static int copy_file_contents(struct sfs_fs *fs, struct sfs_node *n,
			      int dst, off_t size)
{
	int src = sfs_node_open_lowerdata(fs, n, O_RDONLY | O_NOATIME);
	if (src < 0)
		return src;
	int r = copy_data(&fs->layers, src, dst, size);
	close(src);
	if (r == 0 && fsync(dst) != 0)
		r = -errno;
	return r;
}

/* Owner, mode, times and xattrs of the shared object onto the copy. */
static int copy_attrs(struct copy_up *c)
{
	struct sfs_fs *fs = c->fs;
	const struct stat *st = &c->st;
	int t = fs->layers.tmp_fd;
	int r = 0;
	if (!S_ISLNK(st->st_mode)) {
		r = sfs_copy_xattrs(c->low, c->obj);
		if (r < 0)
			return r;
	}
	char ino[24];
	int len = snprintf(ino, sizeof(ino), "%" PRIu64, c->n->ino);
	r = sfs_setxattr_at(t, c->tmp, fs->layers.xa.ino, ino, len);
	if (r < 0)
		return r;
	if (fchownat(t, c->tmp, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	/* After chown, which clears setuid/setgid. */
	if (!S_ISLNK(st->st_mode) && fchmodat(t, c->tmp, st->st_mode & 07777, 0))
		return -errno;
	struct timespec times[2] = { st->st_atim, st->st_mtim };
	if (utimensat(t, c->tmp, times, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	return 0;
}

static int set_lowerdata(struct sfs_fs *fs, struct sfs_node *n, int obj)
{
	g_autofree char *rel = sfs_lower_rel_path(fs, n);
	if (!rel)
		return -EIO;
	g_autofree char *val = g_strdup_printf("%d:%s", n->lower.layer, rel);
	int r = sfs_setxattr_fd(obj, fs->layers.xa.lowerdata, val, strlen(val), 0);
	/* Kernel overlayfs (metacopy=on) finds the data through this. */
	if (r == 0)
		r = sfs_setxattr_fd(obj, fs->layers.xa.redirect, rel, strlen(rel), 0);
	if (r == 0)
		r = sfs_setxattr_fd(obj, fs->layers.xa.metacopy, "", 0, 0);
	if (r == 0) {
		g_free(n->lowerdata);
		n->lowerdata = g_strdup(rel[1] ? rel + 1 : ".");
	}
	return r;
}

/* Build the regular file in workdir; c->meta says whether data was left. */
static int build_file(struct copy_up *c)
{
	struct sfs_fs *fs = c->fs;
	int fd = openat(fs->layers.tmp_fd, c->tmp,
			O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = 0;
	c->meta = c->mode == SFS_COPY_META && fs->metacopy && c->st.st_size > 0;
	if (c->meta) {
		/* Sparse, right size: kernel overlayfs reads it this way. */
		if (ftruncate(fd, c->st.st_size) != 0)
			r = -errno;
		if (r == 0)
			r = set_lowerdata(fs, c->n, fd);
	} else if (c->mode != SFS_COPY_EMPTY) {
		r = copy_file_contents(fs, c->n, fd, c->st.st_size);
	}
	close(fd);
	return r;
}

static int build_object(struct copy_up *c)
{
	int t = c->fs->layers.tmp_fd;
	c->meta = false;
	switch (c->st.st_mode & S_IFMT) {
	case S_IFREG:
		return build_file(c);
	case S_IFDIR:
		return mkdirat(t, c->tmp, 0700) ? -errno : 0;
	case S_IFLNK: {
		char target[PATH_MAX];
		ssize_t len = readlinkat(c->low, "", target,
					 sizeof(target) - 1);
		if (len < 0)
			return -errno;
		target[len] = '\0';
		return symlinkat(target, t, c->tmp) ? -errno : 0;
	}
	default:
		return mknodat(t, c->tmp, c->st.st_mode & S_IFMT, c->st.st_rdev)
			       ? -errno
			       : 0;
	}
}

/* Build the copy in workdir and rename it into the parent's local
 * directory: a crash leaves no copy or a complete one. */
static int build_and_rename(struct copy_up *c)
{
	int t = c->fs->layers.tmp_fd;
	int r = build_object(c);
	if (r == 0) {
		c->obj = openat(t, c->tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		r = c->obj < 0 ? -errno : copy_attrs(c);
	}
	/* Everything that can fail (the index entry too) comes before the
	 * rename that commits. */
	if (r == 0 &&
	    fstatat(c->obj, "", &c->ust, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		r = -errno;
	if (r == 0 && c->indexed)
		r = sfs_index_add(c->fs, c->n, c->obj, c->st.st_nlink);
	if (r == 0 &&
	    renameat2(t, c->tmp, sfs_node_upper(c->n->parent), c->n->name,
		      RENAME_NOREPLACE) != 0) {
		r = -errno;
		if (c->indexed)
			sfs_index_drop(c->fs, c->n);
	}
	if (r < 0) {
		sfs_rmtree_at(t, c->tmp);
		if (c->obj >= 0)
			close(c->obj);
		c->obj = -1;
	}
	return r;
}

/* The node's path in the mount, for the log (names may change under a
 * rename, which the namespace lock held here keeps out). */
static char *node_path(const struct sfs_node *n)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	for (; n && n->parent; n = n->parent)
		g_ptr_array_add(names, n->name);
	GString *s = g_string_new(NULL);
	for (guint i = names->len; i > 0; i--)
		g_string_append_printf(s, "/%s", (char *)names->pdata[i - 1]);
	if (s->len == 0)
		g_string_append_c(s, '/');
	return g_string_free(s, FALSE);
}

/* Count a copy-up (or a metadata-only copy's fill) that copied `bytes`
 * of file data, and at loglevel=info say what, why and how much. */
static void account(struct sfs_fs *fs, const struct sfs_node *n,
		    int64_t bytes)
{
	struct sfs_counters *k = &fs->counters;
	if (bytes > 0) {
		sfs_count_add(&k->copyups_data, 1);
		sfs_count_add(&k->copyup_bytes, (uint64_t)bytes);
	} else {
		sfs_count_add(&k->copyups_meta, 1);
	}
	if (!sfs_log_info_enabled())
		return;
	g_autofree char *path = node_path(n);
	if (bytes > 0)
		sfs_info("copy-up (%s): %s, %" PRId64 " bytes",
			 sfs_request_reason(), path, bytes);
	else
		sfs_info("copy-up (%s): %s, metadata only",
			 sfs_request_reason(), path);
}

/* Bytes of file data a copy will hold; the local layer's count reserves
 * them (and the inode) before anything is built. */
static int64_t data_bytes(const struct copy_up *c)
{
	if (!S_ISREG(c->st.st_mode) || c->mode == SFS_COPY_EMPTY)
		return 0;
	bool meta = c->mode == SFS_COPY_META && c->fs->metacopy &&
		    c->st.st_size > 0;
	return meta ? 0 : c->st.st_size;
}

static int64_t size_estimate(const struct copy_up *c)
{
	if (S_ISDIR(c->st.st_mode))
		return sfs_usage_round(1);
	return sfs_usage_round(data_bytes(c));
}

/* The copy is in place: the node gets its local object. */
static void publish(struct copy_up *c, int64_t reserved)
{
	struct sfs_fs *fs = c->fs;
	sfs_usage_settle(fs, reserved, &c->ust);
	account(fs, c->n, data_bytes(c));
	g_atomic_int_set(&c->n->metacopy, c->meta);
	if (c->indexed)
		sfs_index_added(c->n, c->st.st_nlink);
	struct sfs_obj up;
	sfs_obj_from_fd(&fs->layers, c->obj, 0, S_ISDIR(c->st.st_mode), &up);
	sfs_table_set_upper(fs->table, c->n, &up, c->ust.st_ino);
	sfs_debug("copied up %s (%s)", c->n->name,
		  c->meta ? "metadata" : "full");
}

/* Copy up n, whose parent already has a local directory.  A file with
 * other names in its shared layer may instead be linked to the local
 * inode one of those names was copied to (index.h). */
static int copy_object(struct sfs_fs *fs, struct sfs_node *n,
		       enum sfs_copy_mode mode, bool exclusive)
{
	SFS_AUTOFD low = sfs_obj_get(&fs->layers, &n->lower);
	if (low.fd < 0)
		return low.fd;
	struct copy_up c = { .fs = fs, .n = n, .mode = mode, .low = low.fd,
			     .obj = -1 };
	if (fstatat(low.fd, "", &c.st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	c.indexed = S_ISREG(c.st.st_mode) && c.st.st_nlink > 1;
	if (c.indexed && !exclusive)
		return NEED_EXCLUSIVE; /* the index is shared by its names */
	if (c.indexed) {
		int r = sfs_index_link(fs, n);
		if (r != -ENOENT)
			return r; /* 0: n is local now, maybe metadata only */
	}
	int64_t est = size_estimate(&c);
	int r = sfs_usage_reserve(fs, est, 1);
	if (r < 0)
		return r;
	sfs_tmp_name(&fs->layers, c.tmp);
	r = build_and_rename(&c);
	if (r == 0)
		publish(&c, est);
	else
		sfs_usage_add(fs, -est, -1);
	return r;
}

/* A metadata-only copy gets its data: in place, then the commit. */
static int fill_data(struct sfs_fs *fs, struct sfs_node *n,
		     enum sfs_copy_mode mode)
{
	int fd = sfs_obj_open(&fs->layers, &n->upper, O_WRONLY);
	if (fd < 0)
		return fd;
	struct stat lst, ust;
	int r = sfs_node_stat_lowerdata(fs, n, &lst);
	if (r == 0 && fstat(fd, &ust) != 0)
		r = -errno;
	off_t size = mode == SFS_COPY_EMPTY ? 0 : lst.st_size;
	struct sfs_charge ch;
	if (r == 0)
		r = sfs_usage_begin(fs, fd, 0, size, &ch);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (ftruncate(fd, size))
		r = -errno;
	if (r == 0 && mode != SFS_COPY_EMPTY)
		r = copy_file_contents(fs, n, fd, lst.st_size);
	sfs_usage_end(fs, &ch);
	/* Filling in the data is not a change the user made. */
	struct timespec times[2] = { ust.st_atim, ust.st_mtim };
	if (r == 0 && futimens(fd, times) != 0)
		r = -errno;
	/* The commit point: from here on the local data is the data. */
	if (r == 0 && fremovexattr(fd, fs->layers.xa.metacopy) != 0)
		r = -errno;
	if (r == 0) {
		fremovexattr(fd, fs->layers.xa.lowerdata);
		fremovexattr(fd, fs->layers.xa.redirect);
		g_atomic_int_set(&n->metacopy, 0);
		if (size > 0)
			account(fs, n, size);
	}
	close(fd);
	return r;
}

/* Can n be copied up at all?  (Checked for n and every ancestor that
 * lacks a local directory before anything is copied.) */
static int copyable(struct sfs_fs *fs, struct sfs_node *n)
{
	if (!n->parent || !sfs_obj_valid(&n->lower))
		return -EIO;
	if (!sfs_table_is_hashed(fs->table, n))
		return -ESTALE; /* removed through the mount: no name to copy to */
	return 0;
}

/* The topmost of n and its ancestors that has no local object. */
static struct sfs_node *topmost_missing(struct sfs_node *n)
{
	struct sfs_node *top = n;
	for (struct sfs_node *p = n->parent; !sfs_node_has_upper(p);
	     p = p->parent)
		top = p;
	return top;
}

static int copyup_locked(struct sfs_fs *fs, struct sfs_node *n,
			 enum sfs_copy_mode mode, bool exclusive)
{
	sfs_assert_ns_held(fs); /* n->parent, n->name */
	/* Without metacopy a new copy carries its data, also one that is
	 * linked to an indexed inode below. */
	if (!sfs_node_has_upper(n) && !fs->metacopy && mode == SFS_COPY_META)
		mode = SFS_COPY_DATA;
	for (struct sfs_node *p = n; !sfs_node_has_upper(p); p = p->parent) {
		int r = copyable(fs, p);
		if (r < 0)
			return r;
	}
	/* Parents first, from the topmost missing one down. */
	while (!sfs_node_has_upper(n)) {
		struct sfs_node *top = topmost_missing(n);
		int r = copy_object(fs, top, top == n ? mode : SFS_COPY_META,
				    exclusive);
		if (r < 0)
			return r;
	}
	/* n is local: copied just now, or before we took the lock by another
	 * thread, or linked to an indexed inode.  Only a metadata copy's data
	 * may be missing. */
	if (mode != SFS_COPY_META && g_atomic_int_get(&n->metacopy))
		return fill_data(fs, n, mode);
	return 0;
}

/* The usual copy-up: one file or symlink into a directory that is local
 * already (a link from a shared cache).  Copy-ups of different inodes run
 * side by side; renames and removals that span layers wait for them. */
static int copyup_parallel(struct sfs_fs *fs, struct sfs_node *n,
			   enum sfs_copy_mode mode)
{
	if (S_ISDIR(n->type))
		return NEED_EXCLUSIVE;
	bool taken = sfs_ns_lock_shared(fs);
	if (!taken)
		return copyup_locked(fs, n, mode, true); /* held exclusively */
	int r = NEED_EXCLUSIVE;
	if (n->parent && sfs_node_has_upper(n->parent)) {
		GMutex *m = &fs->copy_stripes[n->ino % SFS_COPY_STRIPES];
		g_mutex_lock(m);
		r = copyup_locked(fs, n, mode, false);
		g_mutex_unlock(m);
	}
	sfs_ns_unlock_shared(fs, taken);
	return r;
}

int sfs_copyup(struct sfs_fs *fs, struct sfs_node *n, enum sfs_copy_mode mode)
{
	if (sfs_node_has_upper(n) &&
	    (mode == SFS_COPY_META || !g_atomic_int_get(&n->metacopy)))
		return 0; /* the common case, without the lock */
	if (fs->read_only)
		return -EROFS;
	int r = copyup_parallel(fs, n, mode);
	if (r == NEED_EXCLUSIVE) {
		sfs_ns_lock(fs);
		r = copyup_locked(fs, n, mode, true);
		sfs_ns_unlock(fs);
	}
	if (r < 0) /* by number: n->name may change once the lock is gone */
		sfs_debug("copy-up of inode %llu failed: %s",
			  (unsigned long long)n->ino, g_strerror(-r));
	return r;
}

static int copyup_child(struct sfs_fs *fs, struct sfs_node *dir,
			const char *name)
{
	struct sfs_node *c;
	struct stat st;
	int r = sfs_lookup(fs, dir, name, &c, &st, NULL);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = S_ISDIR(c->type) ? sfs_copyup_tree(fs, c)
			     : sfs_copyup(fs, c, SFS_COPY_META);
	/* A file with several shared names is one node, copied up under
	 * whichever name it was first looked up by: link this name too, or
	 * it vanishes when dir turns opaque. */
	if (r == 0)
		r = sfs_copyup_name(fs, dir, name, c);
	sfs_node_forget(fs->table, c, 1);
	return r;
}

int sfs_copyup_tree(struct sfs_fs *fs, struct sfs_node *dir)
{
	sfs_ns_lock(fs);
	int r = copyup_locked(fs, dir, SFS_COPY_META, true);
	if (r == 0 && sfs_node_has_lower(dir) &&
	    !g_atomic_int_get(&dir->opaque)) {
		g_autoptr(GPtrArray) names = NULL;
		r = sfs_dir_names(fs, dir, &names);
		for (guint i = 0; r == 0 && i < names->len; i++)
			r = copyup_child(fs, dir, names->pdata[i]);
		if (r == 0)
			r = sfs_set_opaque(&fs->layers, sfs_node_upper(dir));
		if (r == 0)
			g_atomic_int_set(&dir->opaque, 1);
	}
	sfs_ns_unlock(fs);
	return r;
}

int sfs_copyup_name(struct sfs_fs *fs, struct sfs_node *parent,
		    const char *name, struct sfs_node *n)
{
	if (S_ISDIR(n->type))
		return 0;
	int dirfd = sfs_node_upper(parent);
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!sfs_is_whiteout_stat(&st))
			return 0;
	} else if (errno != ENOENT) {
		return -errno;
	}
	/* That shared name becomes local. */
	int r = sfs_index_name_leaving(fs, n);
	if (r < 0)
		return r;
	r = sfs_link_obj(&fs->layers, &n->upper, dirfd, name);
	sfs_index_name_left(fs, n, r == 0);
	return r;
}

int sfs_copyup_shared_link(struct sfs_fs *fs, struct sfs_node *n)
{
	if (!S_ISREG(n->type) || sfs_node_has_upper(n))
		return 0;
	SFS_AUTOFD low = sfs_obj_get(&fs->layers, &n->lower);
	struct stat st;
	if (low.fd < 0 || fstatat(low.fd, "", &st, AT_EMPTY_PATH) != 0 ||
	    st.st_nlink < 2)
		return 0;
	return sfs_copyup(fs, n, SFS_COPY_META);
}
