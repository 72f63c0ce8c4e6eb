/* objref.c - references to real objects: O_PATH fds or file handles
 * (see objref.h). */
#include "config.h"

#include "objref.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <unistd.h>

int sfs_obj_at(const struct sfs_layers *l, int dirfd, const char *name,
	       int layer, bool is_dir, struct sfs_obj *o)
{
	o->fd = -1;
	o->fh = NULL;
	o->layer = layer;
	if (!is_dir && sfs_layer_get(l, layer)->handles) {
		o->fh = sfs_handle_at(dirfd, name, 0);
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
	o->fh = sfs_handle_at(fd, "", AT_EMPTY_PATH);
	if (o->fh) {
		close(fd);
		o->fd = -1;
	}
	return 0;
}

SfsFd sfs_obj_get(const struct sfs_layers *l, const struct sfs_obj *o)
{
	/* Atomic: a node's upper.fd may be pinned meanwhile (node.h). */
	int ofd = g_atomic_int_get(&o->fd);
	if (ofd >= 0 || !o->fh)
		return (SfsFd){ .fd = o->fh || ofd >= 0 ? ofd : -ENOENT };
	int fd = open_by_handle_at(sfs_layer_get(l, o->layer)->mount_fd, o->fh,
				   O_PATH | O_CLOEXEC);
	return (SfsFd){ .fd = fd < 0 ? -errno : fd, .owned = fd >= 0 };
}

int sfs_obj_open(const struct sfs_layers *l, const struct sfs_obj *o,
		 int flags)
{
	int ofd = g_atomic_int_get(&o->fd);
	if (ofd >= 0)
		return sfs_reopen(ofd, flags);
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
	char p[SFS_FD_PATH_LEN];
	return linkat(AT_FDCWD, sfs_fd_path(p, f.fd), dirfd, name,
		      AT_SYMLINK_FOLLOW) ? -errno : 0;
}
