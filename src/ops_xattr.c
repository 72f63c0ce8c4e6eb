/* ops_xattr.c - extended attributes through the mount.
 *
 * The overlay's and scratchfs's own attributes are invisible: never
 * listed, ENODATA on get, EPERM on set or remove.  Setting or removing
 * anything copies the object up (metadata only) first. */
#include "config.h"

#include "copyup.h"
#include "objref.h"
#include "ops.h"
#include "status.h"
#include "xattr.h"

#include <string.h>
#include <sys/stat.h>

/* A symlink's own xattrs cannot be reached through an O_PATH fd without
 * following it, so they are not offered. */
static int check_node(struct sfs_node *n)
{
	return S_ISLNK(n->type) ? -EOPNOTSUPP : 0;
}

void sfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     size_t size)
{
	if (sfs_status_is_virtual(ino, name)) {
		sfs_status_getxattr(req, name, size);
		return;
	}
	struct sfs_node *n = sfs_req_node(req, ino);
	if (sfs_xattr_is_private(name) || S_ISLNK(n->type)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	SFS_AUTOFD f = sfs_obj_get(&sfs_req_fs(req)->layers, sfs_node_obj(n));
	if (f.fd < 0) {
		sfs_reply_err(req, f.fd);
		return;
	}
	g_autofree char *buf = size ? g_malloc(size) : NULL;
	ssize_t r = sfs_getxattr_fd(f.fd, name, buf, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, r);
	else
		fuse_reply_buf(req, buf, r);
}

/* Drop private names from a listxattr result, in place. */
static size_t filter_list(char *buf, size_t len)
{
	size_t out = 0;
	for (size_t i = 0; i < len;) {
		size_t l = strlen(buf + i) + 1;
		if (!sfs_xattr_is_private(buf + i)) {
			memmove(buf + out, buf + i, l);
			out += l;
		}
		i += l;
	}
	return out;
}

void sfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct sfs_node *n = sfs_req_node(req, ino);
	if (S_ISLNK(n->type)) {
		size ? fuse_reply_buf(req, NULL, 0) : fuse_reply_xattr(req, 0);
		return;
	}
	/* The raw list is longer than the filtered one: fetch it whole. */
	SFS_AUTOFD f = sfs_obj_get(&sfs_req_fs(req)->layers, sfs_node_obj(n));
	int fd = f.fd;
	if (fd < 0) {
		sfs_reply_err(req, fd);
		return;
	}
	ssize_t len;
	int err;
	g_autofree char *buf = sfs_listxattr_all(fd, &len, &err);
	if (!buf && err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	size_t out = filter_list(buf, len);
	if (size == 0)
		fuse_reply_xattr(req, out);
	else if (out > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, out);
}

static int prepare_change(fuse_req_t req, struct sfs_node *n,
			  const char *name)
{
	if (sfs_xattr_is_private(name))
		return -EPERM;
	int r = check_node(n);
	return r ? r : sfs_copyup(sfs_req_fs(req), n, SFS_COPY_META);
}

/* The local object of ino, copied up first, to change its attribute
 * name: 0 with *f open, or -errno. */
static int local_for_change(fuse_req_t req, fuse_ino_t ino, const char *name,
			    SfsFd *f)
{
	struct sfs_node *n = sfs_req_node(req, ino);
	int r = prepare_change(req, n, name);
	if (r < 0)
		return r;
	*f = sfs_obj_get(&sfs_req_fs(req)->layers, &n->upper);
	return f->fd < 0 ? f->fd : 0;
}

void sfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     const char *value, size_t size, int flags)
{
	if (sfs_status_is_virtual(ino, name)) {
		sfs_status_setxattr(req, name, value, size);
		return;
	}
	SFS_AUTOFD f = { .fd = -1 };
	int r = local_for_change(req, ino, name, &f);
	if (r == 0)
		r = sfs_setxattr_fd(f.fd, name, value, size, flags);
	fuse_reply_err(req, -r);
}

void sfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (sfs_status_is_virtual(ino, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	SFS_AUTOFD f = { .fd = -1 };
	int r = local_for_change(req, ino, name, &f);
	if (r == 0)
		r = sfs_removexattr_fd(f.fd, name);
	fuse_reply_err(req, -r);
}
