/* whiteout.c - whiteouts and opaque directories (see whiteout.h). */
#include "config.h"

#include "sys.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int sfs_is_whiteout_at(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return sfs_is_whiteout_stat(&st);
	return errno == ENOENT ? 0 : -errno;
}

int sfs_has_wh_file(int dirfd, const char *name)
{
	g_autofree char *wh = g_strconcat(SFS_WH_PREFIX, name, NULL);
	struct stat st;
	if (fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	/* A name of NAME_MAX bytes cannot have a marker. */
	return errno == ENOENT || errno == ENAMETOOLONG ? 0 : -errno;
}

void sfs_wh_file_clear(int dirfd, const char *name)
{
	g_autofree char *wh = g_strconcat(SFS_WH_PREFIX, name, NULL);
	unlinkat(dirfd, wh, 0);
}

int sfs_whiteout_create(const struct sfs_layers *l, int dirfd,
			const char *name)
{
	if (l->mknod_whiteout) {
		if (mknodat(dirfd, name, S_IFCHR | 0000, makedev(0, 0)) == 0)
			return 0;
		if (errno != EPERM)
			return -errno;
	}
	g_autofree char *wh = g_strconcat(SFS_WH_PREFIX, name, NULL);
	int fd = openat(dirfd, wh, O_CREAT | O_WRONLY | O_CLOEXEC, 0000);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int sfs_remove_at(const struct sfs_layers *l, int dirfd, const char *name,
		  bool is_dir, const char *tmpname)
{
	if (unlinkat(dirfd, name, is_dir ? AT_REMOVEDIR : 0) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return -errno;
	/* Whiteouts inside: they must not go one by one (a failure half
	 * way would bring back what they hide), so the directory leaves
	 * in one rename and is emptied in workdir. */
	if (renameat2(dirfd, name, l->tmp_fd, tmpname, RENAME_NOREPLACE) != 0)
		return -errno;
	sfs_rmtree_at(l->tmp_fd, tmpname); /* else: gone at the next mount */
	return 0;
}

int sfs_whiteout_replace(const struct sfs_layers *l, int dirfd,
			 const char *name, bool is_dir, const char *tmpname)
{
	if (!l->mknod_whiteout) {
		/* Fallback form: the marker first (it counts only once the
		 * name is gone), then the name goes. */
		int r = sfs_whiteout_create(l, dirfd, name);
		if (r == 0)
			r = sfs_remove_at(l, dirfd, name, is_dir, tmpname);
		if (r < 0)
			sfs_wh_file_clear(dirfd, name);
		return r;
	}
	if (mknodat(l->tmp_fd, tmpname, S_IFCHR | 0000, makedev(0, 0)) != 0)
		return -errno;
	if (is_dir) {
		/* rename() cannot put a non-directory over a directory:
		 * exchange, then empty and remove the directory (whiteouts
		 * may be left in it) in workdir. */
		if (renameat2(l->tmp_fd, tmpname, dirfd, name,
			      RENAME_EXCHANGE) != 0)
			goto fail;
		sfs_rmtree_at(l->tmp_fd, tmpname); /* else: at the next mount */
		return 0;
	}
	if (renameat(l->tmp_fd, tmpname, dirfd, name) != 0)
		goto fail;
	return 0;
fail:;
	int e = errno;
	unlinkat(l->tmp_fd, tmpname, 0);
	return -e;
}

/* Is the opaque xattr `attr` "y"?  No xattr, no xattr support, or a
 * longer value (ERANGE) all mean no, as for the kernel. */
static int opaque_xattr(int fd, const char *attr)
{
	char v;
	ssize_t n = sfs_getxattr_fd(fd, attr, &v, 1);
	if (n == -ENODATA || n == -ENOTSUP || n == -ERANGE)
		return 0;
	return n < 0 ? (int)n : n == 1 && v == 'y';
}

int sfs_is_opaque(const struct sfs_layers *l, int fd)
{
	int r = opaque_xattr(fd, l->xa.opaque);
	if (r != 0)
		return r;
	/* Layers written by kernel overlayfs in the other xattr mode. */
	const char *other = g_str_has_prefix(l->xa.opaque, "trusted.")
				    ? "user.overlay.opaque"
				    : "trusted.overlay.opaque";
	return opaque_xattr(fd, other);
}

int sfs_is_metacopy_at(const struct sfs_layers *l, int dirfd,
		       const char *name)
{
	ssize_t r = sfs_getxattr_at(dirfd, name, l->xa.metacopy, NULL, 0);
	if (r >= 0)
		return 1;
	return r == -ENODATA || r == -ENOTSUP ? 0 : (int)r;
}

bool sfs_is_lost_at(const struct sfs_layers *l, int dirfd, const char *name)
{
	return sfs_getxattr_at(dirfd, name, l->xa.lost, NULL, 0) >= 0;
}

int sfs_set_opaque(const struct sfs_layers *l, int fd)
{
	return sfs_setxattr_fd(fd, l->xa.opaque, "y", 1, 0);
}

int sfs_set_opaque_at(const struct sfs_layers *l, int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = sfs_set_opaque(l, fd);
	close(fd);
	return r;
}

static int count_entry(int dirfd, const char *name, void *arg)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (sfs_is_whiteout_stat(&st) || sfs_is_wh_name(name))
		++*(int *)arg;
	return 0;
}

int sfs_count_whiteouts(int dir_opath_fd, int *count)
{
	*count = 0;
	int fd = sfs_reopen(dir_opath_fd, O_RDONLY | O_DIRECTORY);
	return fd < 0 ? fd : sfs_foreach_entry(fd, count_entry, count);
}
