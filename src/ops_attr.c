/* ops_attr.c - attributes: getattr, setattr, readlink, statfs. */
#include "config.h"

#include "attr.h"
#include "copyup.h"
#include "lookup.h"
#include "objref.h"
#include "ops.h"
#include "sys.h"
#include "usage.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

void sfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_node *n = sfs_req_node(req, ino);
	struct stat st;
	int r = sfs_node_getattr(fs, n, &st);
	/* fstat() of an open file whose names are all gone. */
	if (r == -ESTALE && sfs_fd_from_fh(fi) >= 0 &&
	    fstat(sfs_fd_from_fh(fi), &st) == 0) {
		st.st_ino = n->ino;
		r = 0;
	}
	if (r < 0)
		sfs_reply_err(req, r);
	else
		fuse_reply_attr(req, &st, sfs_node_timeout(fs, n));
}

/* What a setattr needs of the data: truncation needs it all (or none). */
static enum sfs_copy_mode setattr_mode(const struct stat *attr, int valid)
{
	if (!(valid & FUSE_SET_ATTR_SIZE))
		return SFS_COPY_META;
	return attr->st_size == 0 ? SFS_COPY_EMPTY : SFS_COPY_DATA;
}

#define TIME_BITS                                                              \
	(FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | \
	 FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)

static int set_times(int fd, const struct stat *attr, int valid)
{
	struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT },
				  { .tv_nsec = UTIME_OMIT } };
	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		tv[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		tv[1] = attr->st_mtim;
	return utimensat(fd, "", tv, AT_EMPTY_PATH) ? -errno : 0;
}

/* Growing a file leaves a hole (nothing to reserve); shrinking it gives
 * blocks back to the local layer's count. */
static int truncate_node(struct sfs_fs *fs, int opath,
			 struct fuse_file_info *fi, off_t size)
{
	int fd = sfs_fd_from_fh(fi);
	bool own = fd < 0;
	if (own)
		fd = sfs_reopen(opath, O_WRONLY);
	if (fd < 0)
		return fd;
	struct sfs_charge ch;
	sfs_usage_begin(fs, fd, size, 0, &ch);
	int r = ftruncate(fd, size) ? -errno : 0;
	sfs_usage_end(fs, &ch);
	if (own)
		close(fd);
	return r;
}

static int apply_setattr(struct sfs_fs *fs, struct sfs_node *n,
			 const struct stat *attr, int valid,
			 struct fuse_file_info *fi)
{
	SFS_AUTOFD f = sfs_obj_get(&fs->layers, &n->upper);
	int fd = f.fd;
	if (fd < 0)
		return fd;
	char p[SFS_FD_PATH_LEN];
	sfs_fd_path(p, fd);
	if (valid & FUSE_SET_ATTR_MODE) {
		if (S_ISLNK(n->type))
			return -EOPNOTSUPP;
		if (chmod(p, attr->st_mode & 07777) != 0)
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		if (fchownat(fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		int r = truncate_node(fs, fd, fi, attr->st_size);
		if (r < 0)
			return r;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		     FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
		return set_times(fd, attr, valid);
	return 0;
}

void sfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		    int valid, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_node *n = sfs_req_node(req, ino);
	int r = sfs_copyup(fs, n, setattr_mode(attr, valid));
	if (r == 0)
		r = apply_setattr(fs, n, attr, valid, fi);
	/* The writeback cache flushes times of files that are gone from
	 * the view; there is nowhere to keep them, and no one to see them. */
	if (r == -ESTALE && !(valid & ~TIME_BITS))
		r = 0;
	struct stat st;
	if (r == 0)
		r = sfs_node_getattr(fs, n, &st);
	if (r < 0)
		sfs_reply_err(req, r);
	else
		fuse_reply_attr(req, &st, sfs_node_timeout(fs, n));
}

/* Only reached on private mounts (with default_permissions the kernel
 * decides alone): ask the layer, as the daemon's user. */
void sfs_op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	if ((mask & W_OK) && fs->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	SFS_AUTOFD f = sfs_obj_get(&fs->layers,
				   sfs_node_obj(sfs_req_node(req, ino)));
	if (f.fd < 0) {
		sfs_reply_err(req, f.fd);
		return;
	}
	int r = faccessat(f.fd, "", mask, AT_EMPTY_PATH | AT_EACCESS);
	/* A read-only shared layer is no obstacle: writing makes a copy. */
	if (r && errno == EROFS)
		r = faccessat(f.fd, "", mask & ~W_OK, AT_EMPTY_PATH | AT_EACCESS);
	fuse_reply_err(req, r ? errno : 0);
}

void sfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	SFS_AUTOFD f = sfs_obj_get(&fs->layers,
				   sfs_node_obj(sfs_req_node(req, ino)));
	if (f.fd < 0) {
		sfs_reply_err(req, f.fd);
		return;
	}
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(f.fd, "", buf, sizeof(buf) - 1);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

void sfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	/* Space is the local layer's: that is where every write lands. */
	struct sfs_fs *fs = sfs_req_fs(req);
	struct statvfs sv;
	if (fstatvfs(fs->layers.upper.fd, &sv) != 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sfs_usage_statfs(fs, &sv);
	fuse_reply_statfs(req, &sv);
}
