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

bool sfs_is_whiteout_at(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       sfs_is_whiteout_stat(&st);
}

bool sfs_has_wh_file(int dirfd, const char *name)
{
	g_autofree char *wh = g_strconcat(SFS_WH_PREFIX, name, NULL);
	struct stat st;
	return fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) == 0;
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

int sfs_whiteout_replace(const struct sfs_layers *l, int dirfd,
			 const char *name, bool is_dir, const char *tmpname)
{
	if (!l->mknod_whiteout) {
		/* Fallback form: remove, then mark.  Not atomic, but the
		 * marker names a different entry so no state is ambiguous
		 * beyond "removed and not yet hidden". */
		if (unlinkat(dirfd, name, is_dir ? AT_REMOVEDIR : 0) != 0)
			return -errno;
		return sfs_whiteout_create(l, dirfd, name);
	}
	if (mknodat(l->tmp_fd, tmpname, S_IFCHR | 0000, makedev(0, 0)) != 0)
		return -errno;
	if (is_dir) {
		/* rename() cannot put a non-directory over a directory:
		 * exchange, then remove the (empty) directory. */
		if (renameat2(l->tmp_fd, tmpname, dirfd, name,
			      RENAME_EXCHANGE) != 0)
			goto fail;
		if (unlinkat(l->tmp_fd, tmpname, AT_REMOVEDIR) != 0)
			return -errno;
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

bool sfs_is_opaque(const struct sfs_layers *l, int fd)
{
	char v;
	ssize_t n = sfs_getxattr_fd(fd, l->xa.opaque, &v, 1);
	if (n == 1 && v == 'y')
		return true;
	/* Layers written by kernel overlayfs in the other xattr mode. */
	const char *other = g_str_has_prefix(l->xa.opaque, "trusted.")
				    ? "user.overlay.opaque"
				    : "trusted.overlay.opaque";
	n = sfs_getxattr_fd(fd, other, &v, 1);
	return n == 1 && v == 'y';
}

bool sfs_is_metacopy_at(const struct sfs_layers *l, int dirfd,
			const char *name)
{
	return sfs_getxattr_at(dirfd, name, l->xa.metacopy, NULL, 0) >= 0;
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

/* Remove one entry if it is a whiteout; anything else means the
 * directory is not empty. */
static int clear_entry(int dirfd, const char *name, void *arg)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (!sfs_is_whiteout_stat(&st) && !sfs_is_wh_name(name))
		return -ENOTEMPTY;
	if (unlinkat(dirfd, name, 0) != 0)
		return -errno;
	++*(int *)arg;
	return 0;
}

int sfs_clear_whiteouts(int dir_opath_fd, int *removed)
{
	*removed = 0;
	int fd = sfs_reopen(dir_opath_fd, O_RDONLY | O_DIRECTORY);
	return fd < 0 ? fd : sfs_foreach_entry(fd, clear_entry, removed);
}
