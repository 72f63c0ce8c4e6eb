/* sys.c - system-call wrappers shared by all modules (see sys.h). */
#include "config.h"

#include "sys.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>

const char *sfs_fd_path(char buf[SFS_FD_PATH_LEN], int fd)
{
	snprintf(buf, SFS_FD_PATH_LEN, "/proc/self/fd/%d", fd);
	return buf;
}

char *sfs_fd_path_at(int dirfd, const char *name)
{
	return g_strdup_printf("/proc/self/fd/%d/%s", dirfd, name);
}

int sfs_reopen(int opath_fd, int flags)
{
	char path[SFS_FD_PATH_LEN];
	sfs_fd_path(path, opath_fd);
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		fd = open(path, (flags & ~O_NOATIME) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

struct file_handle *sfs_handle_at(int dirfd, const char *name, int flags)
{
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int mount_id;
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dirfd, name, &u.fh, &mount_id, flags) != 0)
		return NULL;
	return g_memdup2(&u.fh, sizeof(struct file_handle) + u.fh.handle_bytes);
}
