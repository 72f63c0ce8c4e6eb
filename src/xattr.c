/* xattr.c - extended attributes on O_PATH fds (see xattr.h). */
#include "config.h"

#include "sys.h"
#include "xattr.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define FD_PATH(var, fd)                                                       \
	char var##_buf[SFS_FD_PATH_LEN];                                       \
	const char *var = sfs_fd_path(var##_buf, fd)

ssize_t sfs_getxattr_at(int dirfd, const char *name, const char *attr,
			void *buf, size_t size)
{
	g_autofree char *p = sfs_fd_path_at(dirfd, name);
	ssize_t r = lgetxattr(p, attr, buf, size);
	return r < 0 ? -errno : r;
}

int sfs_setxattr_at(int dirfd, const char *name, const char *attr,
		    const void *val, size_t size)
{
	g_autofree char *p = sfs_fd_path_at(dirfd, name);
	return lsetxattr(p, attr, val, size, 0) < 0 ? -errno : 0;
}

ssize_t sfs_getxattr_fd(int fd, const char *name, void *buf, size_t size)
{
	FD_PATH(p, fd);
	ssize_t r = getxattr(p, name, buf, size);
	return r < 0 ? -errno : r;
}

int sfs_setxattr_fd(int fd, const char *name, const void *val, size_t size,
		    int flags)
{
	FD_PATH(p, fd);
	return setxattr(p, name, val, size, flags) < 0 ? -errno : 0;
}

ssize_t sfs_listxattr_fd(int fd, char *buf, size_t size)
{
	FD_PATH(p, fd);
	ssize_t r = listxattr(p, buf, size);
	return r < 0 ? -errno : r;
}

int sfs_removexattr_fd(int fd, const char *name)
{
	FD_PATH(p, fd);
	return removexattr(p, name) < 0 ? -errno : 0;
}

bool sfs_xattr_is_private(const char *name)
{
	static const char *const prefixes[] = {
		"trusted.overlay.", "trusted.scratchfs.",
		"user.overlay.", "user.scratchfs.",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(prefixes); i++)
		if (g_str_has_prefix(name, prefixes[i]))
			return true;
	return false;
}

char *sfs_listxattr_all(int fd, ssize_t *len, int *err)
{
	for (;;) {
		ssize_t n = sfs_listxattr_fd(fd, NULL, 0);
		if (n <= 0) {
			*err = n < 0 ? (int)n : 0;
			*len = 0;
			return NULL;
		}
		char *buf = g_malloc(n);
		*len = sfs_listxattr_fd(fd, buf, n);
		if (*len >= 0)
			return buf;
		g_free(buf);
		if (*len != -ERANGE) {
			*err = (int)*len;
			return NULL;
		}
	}
}

static int copy_one(int src, int dst, const char *name)
{
	ssize_t n = sfs_getxattr_fd(src, name, NULL, 0);
	if (n < 0)
		return n == -ENODATA ? 0 : (int)n;
	g_autofree char *val = g_malloc(n ? n : 1);
	n = sfs_getxattr_fd(src, name, val, n);
	if (n < 0)
		return n == -ENODATA ? 0 : (int)n;
	return sfs_setxattr_fd(dst, name, val, n, 0);
}

int sfs_copy_xattrs(int src, int dst)
{
	ssize_t len;
	int err = 0;
	g_autofree char *names = sfs_listxattr_all(src, &len, &err);
	if (!names)
		return err == -ENOTSUP ? 0 : err;
	for (char *p = names; p < names + len; p += strlen(p) + 1) {
		if (sfs_xattr_is_private(p))
			continue;
		int r = copy_one(src, dst, p);
		/* A security.* label the local layer cannot take is not data
		 * loss; anything else is. */
		bool label = g_str_has_prefix(p, "security.") &&
			     (r == -EPERM || r == -ENOTSUP);
		if (r < 0 && !label)
			return r;
	}
	return 0;
}

int sfs_getxattr_u64(int dirfd, const char *name, const char *attr,
		     uint64_t *out)
{
	char buf[32];
	ssize_t n = sfs_getxattr_at(dirfd, name, attr, buf, sizeof(buf) - 1);
	if (n == -ENODATA)
		return 0;
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	/* digits only: strtoull would take " 5" and turn "-5" into 2^64-5 */
	if (!g_ascii_isdigit(buf[0]))
		return -EIO;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (n == 0 || errno || *end)
		return -EIO; /* not written by scratchfs: damaged */
	*out = v;
	return 1;
}
