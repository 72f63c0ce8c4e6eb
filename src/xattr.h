/* xattr.h - extended attributes on O_PATH fds, and the private-name filter.
 *
 * An O_PATH fd cannot be passed to fgetxattr(), so these go through
 * /proc/self/fd/N, which the kernel resolves without a path walk of the
 * layer.  Symlinks use the l*xattr() forms so the link itself is used.
 */
#pragma once

#include "layers.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* -errno on failure; sizes otherwise, as the syscalls. */
ssize_t sfs_getxattr_fd(int fd, const char *name, void *buf, size_t size);
int sfs_setxattr_fd(int fd, const char *name, const void *val, size_t size,
		    int flags);
ssize_t sfs_listxattr_fd(int fd, char *buf, size_t size);
int sfs_removexattr_fd(int fd, const char *name);

/* The whole list of names (g_free it), asking again if it grew between
 * the size probe and the read; NULL with *len 0 and *err 0 when there
 * are none, NULL with *err = -errno on failure. */
char *sfs_listxattr_all(int fd, ssize_t *len, int *err);

/* The same on dirfd/name without following a final symlink: the only
 * way to reach a symlink's own xattrs. */
ssize_t sfs_getxattr_at(int dirfd, const char *name, const char *attr,
			void *buf, size_t size);
int sfs_setxattr_at(int dirfd, const char *name, const char *attr,
		    const void *val, size_t size);

/* True for names scratchfs keeps for itself: never shown or settable
 * through the mount (overlay.* and scratchfs.* in trusted and user). */
bool sfs_xattr_is_private(const char *name);

/* Copy all non-private xattrs from src to dst (both O_PATH). */
int sfs_copy_xattrs(int src, int dst);

/* Read a decimal uint64 xattr: 1 (*out set), 0 if absent, -errno if it
 * cannot be read, -EIO if it is malformed. */
int sfs_getxattr_u64(int dirfd, const char *name, const char *attr,
		     uint64_t *out);
