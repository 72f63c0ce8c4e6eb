/* copyup.c - bring a shared-layer object into the local layer
 * (see copyup.h). */
#include "config.h"

#include "copyup.h"
#include "log.h"
#include "index.h"
#include "attr.h"
#include "lookup.h"
#include "lower.h"
#include "objref.h"
#include "readdir.h"
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

static int copyup_locked(struct sfs_fs *fs, struct sfs_node *n,
			 enum sfs_copy_mode mode);

bool sfs_node_has_lower(const struct sfs_node *n)
{
	if (S_ISDIR(n->type))
		return n->lowerdirs && n->lowerdirs->len;
	return sfs_obj_valid(&n->lower);
}

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

/* Owner, mode, times and xattrs of st onto tmp/name. */
static int copy_attrs(struct sfs_fs *fs, struct sfs_node *n, int lfd,
		      const struct stat *st, const char *name, int obj)
{
	int t = fs->layers.tmp_fd;
	int r = 0;
	if (!S_ISLNK(st->st_mode)) {
		r = sfs_copy_xattrs(lfd, obj);
		if (r < 0)
			return r;
	}
	char ino[24];
	int len = snprintf(ino, sizeof(ino), "%" PRIu64, n->ino);
	r = sfs_setxattr_at(t, name, fs->layers.xa.ino, ino, len);
	if (r < 0)
		return r;
	if (fchownat(t, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	/* After chown, which clears setuid/setgid. */
	if (!S_ISLNK(st->st_mode) && fchmodat(t, name, st->st_mode & 07777, 0))
		return -errno;
	struct timespec times[2] = { st->st_atim, st->st_mtim };
	if (utimensat(t, name, times, AT_SYMLINK_NOFOLLOW) != 0)
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

/* Build the regular file in workdir; *meta says whether data was left. */
static int build_file(struct sfs_fs *fs, struct sfs_node *n, int lfd,
		      const struct stat *st, const char *name,
		      enum sfs_copy_mode mode, bool *meta)
{
	int fd = openat(fs->layers.tmp_fd, name,
			O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = 0;
	*meta = mode == SFS_COPY_META && fs->metacopy && st->st_size > 0;
	if (*meta) {
		/* Sparse, right size: kernel overlayfs reads it this way. */
		if (ftruncate(fd, st->st_size) != 0)
			r = -errno;
		if (r == 0)
			r = set_lowerdata(fs, n, fd);
	} else if (mode != SFS_COPY_EMPTY) {
		r = copy_file_contents(fs, n, fd, st->st_size);
	}
	close(fd);
	return r;
}

static int build_object(struct sfs_fs *fs, struct sfs_node *n, int lfd,
			const struct stat *st, const char *name,
			enum sfs_copy_mode mode, bool *meta)
{
	int t = fs->layers.tmp_fd;
	*meta = false;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		return build_file(fs, n, lfd, st, name, mode, meta);
	case S_IFDIR:
		return mkdirat(t, name, 0700) ? -errno : 0;
	case S_IFLNK: {
		char target[PATH_MAX];
		ssize_t len = readlinkat(lfd, "", target,
					 sizeof(target) - 1);
		if (len < 0)
			return -errno;
		target[len] = '\0';
		return symlinkat(target, t, name) ? -errno : 0;
	}
	default:
		return mknodat(t, name, st->st_mode & S_IFMT, st->st_rdev)
			       ? -errno
			       : 0;
	}
}

/* Copy up a node whose parent already has a local directory. */
static int copyup_new(struct sfs_fs *fs, struct sfs_node *n,
		      enum sfs_copy_mode mode)
{
	SFS_AUTOFD low = sfs_obj_get(&fs->layers, &n->lower);
	struct stat st;
	if (low.fd < 0)
		return low.fd;
	if (fstatat(low.fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	bool shared_links = S_ISREG(st.st_mode) && st.st_nlink > 1;
	if (shared_links) {
		int r = sfs_index_link(fs, n);
		if (r != -ENOENT)
			return r < 0 ? r : copyup_locked(fs, n, mode);
	}
	char name[32];
	sfs_tmp_name(fs, name);
	int t = fs->layers.tmp_fd;
	bool meta;
	int r = build_object(fs, n, low.fd, &st, name, mode, &meta);
	int obj = -1;
	if (r == 0) {
		obj = openat(t, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		r = obj < 0 ? -errno : copy_attrs(fs, n, low.fd, &st, name, obj);
	}
	if (r == 0 &&
	    renameat2(t, name, sfs_node_upper(n->parent), n->name,
		      RENAME_NOREPLACE) != 0)
		r = -errno;
	if (r < 0) {
		sfs_rmtree_at(t, name);
		if (obj >= 0)
			close(obj);
		return r;
	}
	struct stat ust;
	fstatat(obj, "", &ust, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	g_atomic_int_set(&n->metacopy, meta);
	if (shared_links)
		sfs_index_add(fs, n, obj, st.st_nlink);
	struct sfs_obj up;
	sfs_obj_from_fd(&fs->layers, obj, 0, S_ISDIR(st.st_mode), &up);
	sfs_table_set_upper(fs->table, n, &up, ust.st_ino);
	sfs_debug("copied up %s (%s)", n->name, meta ? "metadata" : "full");
	return 0;
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
	if (r == 0 && ftruncate(fd, mode == SFS_COPY_EMPTY ? 0 : lst.st_size))
		r = -errno;
	if (r == 0 && mode != SFS_COPY_EMPTY)
		r = copy_file_contents(fs, n, fd, lst.st_size);
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
	}
	close(fd);
	return r;
}

static int copyup_locked(struct sfs_fs *fs, struct sfs_node *n,
			 enum sfs_copy_mode mode)
{
	if (sfs_node_has_upper(n)) {
		if (mode != SFS_COPY_META && g_atomic_int_get(&n->metacopy))
			return fill_data(fs, n, mode);
		return 0;
	}
	if (!n->parent || !sfs_obj_valid(&n->lower))
		return -EIO;
	if (!n->hashed)
		return -ESTALE; /* removed through the mount: no name to copy to */
	int r = copyup_locked(fs, n->parent, SFS_COPY_META);
	if (r < 0)
		return r;
	if (!fs->metacopy && mode == SFS_COPY_META)
		mode = SFS_COPY_DATA;
	return copyup_new(fs, n, mode);
}

int sfs_copyup(struct sfs_fs *fs, struct sfs_node *n, enum sfs_copy_mode mode)
{
	if (sfs_node_has_upper(n) &&
	    (mode == SFS_COPY_META || !g_atomic_int_get(&n->metacopy)))
		return 0; /* the common case, without the lock */
	if (fs->read_only)
		return -EROFS;
	g_rec_mutex_lock(&fs->ns_lock);
	int r = copyup_locked(fs, n, mode);
	g_rec_mutex_unlock(&fs->ns_lock);
	if (r < 0)
		sfs_debug("copy-up of %s failed: %s", n->name, g_strerror(-r));
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
	sfs_node_forget(fs->table, c, 1);
	return r;
}

int sfs_copyup_tree(struct sfs_fs *fs, struct sfs_node *dir)
{
	g_rec_mutex_lock(&fs->ns_lock);
	int r = copyup_locked(fs, dir, SFS_COPY_META);
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
	g_rec_mutex_unlock(&fs->ns_lock);
	return r;
}

int sfs_copyup_name(struct sfs_fs *fs, struct sfs_node *parent,
		    const char *name, struct sfs_node *n)
{
	if (S_ISDIR(n->type))
		return 0;
	int dirfd = sfs_node_upper(parent);
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !sfs_is_whiteout_stat(&st))
		return 0;
	int r = sfs_link_obj(&fs->layers, &n->upper, dirfd, name);
	if (r == 0)
		sfs_index_name_gone(fs, n); /* that shared name is local now */
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
