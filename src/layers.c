/* layers.c - open and probe the layers once at mount time.
 *
 * Probing answers, once, what the local filesystem can do (trusted xattrs,
 * char 0/0 whiteouts, RENAME_WHITEOUT) and which layers can keep objects as
 * file handles, so no request ever retries a refused operation.  Leftovers of interrupted copy-ups in workdir/work are
 * removed here: they were never renamed into place, so nothing visible is
 * lost.
 */
#include "config.h"

#include "layers.h"
#include "log.h"
#include "options.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Can objects of this layer be kept as file handles (and opened by them,
 * which needs root)? */
static bool probe_handles(struct sfs_layer *ly)
{
	ly->mount_fd = open(ly->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ly->mount_fd < 0)
		return ly->handles = false;
	struct file_handle *fh = sfs_handle_at(ly->fd, "", AT_EMPTY_PATH);
	int fd = fh ? open_by_handle_at(ly->mount_fd, fh, O_PATH) : -1;
	g_free(fh);
	if (fd >= 0)
		close(fd);
	return ly->handles = fd >= 0;
}

static bool open_layer(struct sfs_layer *ly, const char *path, int index,
		       GError **err)
{
	ly->path = g_strdup(path);
	ly->index = index;
	ly->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ly->fd < 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER, "%s: %s", path,
			    g_strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(ly->fd, &st) != 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER, "%s: %s", path,
			    g_strerror(errno));
		return false;
	}
	ly->dev = st.st_dev;
	probe_handles(ly);
	return true;
}

int sfs_foreach_entry(int fd, int (*fn)(int dirfd, const char *name, void *arg),
		      void *arg)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = fn(dirfd(d), de->d_name, arg);
	}
	closedir(d);
	return r;
}

static int rmtree_entry(int dirfd, const char *name, void *arg)
{
	int r = sfs_rmtree_at(dirfd, name);
	if (r < 0)
		*(int *)arg = r;
	return 0; /* keep going: remove as much as possible */
}

int sfs_rmtree_at(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					      O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = 0;
	int r = sfs_foreach_entry(fd, rmtree_entry, &err);
	if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		return -errno;
	return r < 0 ? r : err;
}

static int ensure_dir(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST)
		return -errno;
	int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* workdir/work holds only half-built copy-ups: empty it. */
static bool open_workdir(struct sfs_layers *l, const char *path,
			 GError **err)
{
	/* Held shared while mounted; scratchfs --fsck takes it exclusively
	 * (fsck.h).  Taken before the cleanup below: a check may be reading
	 * what it would remove. */
	l->lock_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->lock_fd < 0)
		goto fail;
	if (flock(l->lock_fd, LOCK_SH | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			goto fail;
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "workdir %s: scratchfs --fsck is checking this layer",
			    path);
		return false;
	}
	l->work_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (l->work_fd < 0)
		goto fail;
	int r = sfs_rmtree_at(l->work_fd, "work");
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	l->tmp_fd = ensure_dir(l->work_fd, "work");
	l->index_fd = ensure_dir(l->work_fd, "index");
	if (l->tmp_fd < 0 || l->index_fd < 0) {
		errno = -(l->tmp_fd < 0 ? l->tmp_fd : l->index_fd);
		goto fail;
	}
	return true;
fail:
	g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER, "workdir %s: %s", path,
		    g_strerror(errno));
	return false;
}

static const char *xa_name(const char *ns, const char *name)
{
	g_autofree char *full = g_strconcat(ns, name, NULL);
	return g_intern_string(full);
}

/* The private xattr names, under trusted.* as root or user.* otherwise.
 * Interned: they live as long as the process. */
static void set_xattr_names(struct sfs_layers *l, bool trusted)
{
	const char *ns = trusted ? "trusted." : "user.";
	struct sfs_xattr_names *x = &l->xa;
#define XA(field, name) x->field = xa_name(ns, name)
	XA(opaque, "overlay.opaque");
	XA(metacopy, "overlay.metacopy");
	XA(lost, SFS_LOST_XATTR);
	XA(redirect, "overlay.redirect");
	XA(ino, "scratchfs.ino");
	XA(lowerdata, "scratchfs.lowerdata");
	XA(nlink, "scratchfs.nlink");
#undef XA
}

/* What can the local filesystem do?  Each probe runs in workdir/work. */
static bool probe_local_fs(struct sfs_layers *l, GError **err)
{
	int t = l->tmp_fd;
	char path[SFS_FD_PATH_LEN];
	sfs_fd_path(path, t);

	bool trusted = setxattr(path, "trusted.scratchfs.probe", "y", 1, 0) == 0;
	if (!trusted &&
	    setxattr(path, "user.scratchfs.probe", "y", 1, 0) != 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "workdir %s/work: extended attributes not supported (%s)",
			    l->upper.path, g_strerror(errno));
		return false;
	}
	removexattr(path, trusted ? "trusted.scratchfs.probe"
				  : "user.scratchfs.probe");
	set_xattr_names(l, trusted);

	l->mknod_whiteout = mknodat(t, "wh", S_IFCHR | 0000, makedev(0, 0)) == 0;
	unlinkat(t, "wh", 0);

	int fd = openat(t, "rw", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		l->rename_whiteout = renameat2(t, "rw", t, "rw2", RENAME_WHITEOUT) == 0;
		unlinkat(t, "rw", 0);
		unlinkat(t, "rw2", 0);
	}
	l->can_clone = -1;
	sfs_debug("local layer: %s xattrs, whiteouts %s, RENAME_WHITEOUT %s",
		  trusted ? "trusted" : "user",
		  l->mknod_whiteout ? "char 0/0" : ".wh. files",
		  l->rename_whiteout ? "yes" : "no");
	return true;
}

bool sfs_layers_open(const struct sfs_config *cfg, struct sfs_layers *l,
		     GError **err)
{
	memset(l, 0, sizeof(*l));
	l->upper.fd = l->upper.mount_fd = -1;
	l->work_fd = l->tmp_fd = l->index_fd = l->lock_fd = -1;
	if (!open_layer(&l->upper, cfg->upperdir, 0, err))
		return false;
	l->nlower = g_strv_length(cfg->lowerdirs);
	l->lower = g_new0(struct sfs_layer, l->nlower);
	for (int i = 0; i < l->nlower; i++)
		l->lower[i].fd = l->lower[i].mount_fd = -1;
	for (int i = 0; i < l->nlower; i++)
		if (!open_layer(&l->lower[i], cfg->lowerdirs[i], i + 1, err))
			return false;
	if (l->nlower >= 255) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "too many shared layers (%d, at most 254)", l->nlower);
		return false;
	}
	return open_workdir(l, cfg->workdir, err) && probe_local_fs(l, err);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void sfs_layers_close(struct sfs_layers *l)
{
	close_fd(&l->upper.fd);
	close_fd(&l->upper.mount_fd);
	g_free(l->upper.path);
	for (int i = 0; i < l->nlower; i++) {
		close_fd(&l->lower[i].fd);
		close_fd(&l->lower[i].mount_fd);
		g_free(l->lower[i].path);
	}
	g_free(l->lower);
	close_fd(&l->tmp_fd);
	close_fd(&l->index_fd);
	close_fd(&l->work_fd);
	close_fd(&l->lock_fd);
}

void sfs_tmp_name(struct sfs_layers *l, char buf[32])
{
	guint64 n = __atomic_add_fetch(&l->tmp_counter, 1, __ATOMIC_RELAXED);
	snprintf(buf, 32, "#%" G_GINT64_MODIFIER "x", n);
}
