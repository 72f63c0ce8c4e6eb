/* objref.c - references to real objects: O_PATH fds or file handles
 * (see objref.h). */
#include "config.h"

#include "objref.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <unistd.h>

static struct file_handle *handle_at(int dirfd, const char *name, int flags)
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

bool sfs_layer_probe_handles(struct sfs_layer *ly)
{
	ly->mount_fd = open(ly->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ly->mount_fd < 0)
		return ly->handles = false;
	struct file_handle *fh = handle_at(ly->fd, "", AT_EMPTY_PATH);
	int fd = fh ? open_by_handle_at(ly->mount_fd, fh, O_PATH) : -1;
	g_free(fh);
	if (fd >= 0)
		close(fd);
	return ly->handles = fd >= 0;
}

int sfs_obj_at(const struct sfs_layers *l, int dirfd, const char *name,
	       int layer, bool is_dir, struct sfs_obj *o)
{
	o->fd = -1;
	o->fh = NULL;
	o->layer = layer;
	if (!is_dir && sfs_layer_get(l, layer)->handles) {
		o->fh = handle_at(dirfd, name, 0);
		if (o->fh)
			return 0;
	}
	o->fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return o->fd < 0 ? -errno : 0;
}

int sfs_obj_from_fd(const struct sfs_layers *l, int fd, int layer,
		    bool is_dir, struct sfs_obj *o)
{
	o->fd = fd;
	o->fh = NULL;
	o->layer = layer;
	if (is_dir || !sfs_layer_get(l, layer)->handles)
		return 0;
	o->fh = handle_at(fd, "", AT_EMPTY_PATH);
	if (o->fh) {
		close(fd);
		o->fd = -1;
	}
	return 0;
}

SfsFd sfs_obj_get(const struct sfs_layers *l, const struct sfs_obj *o)
{
	if (o->fd >= 0 || !o->fh)
		return (SfsFd){ .fd = o->fh || o->fd >= 0 ? o->fd : -ENOENT };
	int fd = open_by_handle_at(sfs_layer_get(l, o->layer)->mount_fd, o->fh,
				   O_PATH | O_CLOEXEC);
	return (SfsFd){ .fd = fd < 0 ? -errno : fd, .owned = fd >= 0 };
}

int sfs_obj_open(const struct sfs_layers *l, const struct sfs_obj *o,
		 int flags)
{
	if (o->fd >= 0)
		return sfs_reopen(o->fd, flags);
	if (!o->fh)
		return -ENOENT;
	int mfd = sfs_layer_get(l, o->layer)->mount_fd;
	int fd = open_by_handle_at(mfd, o->fh, flags | O_CLOEXEC);
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		fd = open_by_handle_at(mfd, o->fh, (flags & ~O_NOATIME) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int sfs_link_obj(const struct sfs_layers *l, const struct sfs_obj *o,
		 int dirfd, const char *name)
{
	SFS_AUTOFD f = sfs_obj_get(l, o);
	if (f.fd < 0)
		return f.fd;
	char p[40];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", f.fd);
	return linkat(AT_FDCWD, p, dirfd, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
}
