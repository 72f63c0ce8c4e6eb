/* ops_file.c - open files: open/create, read/write, release, fsync,
 * fallocate, lseek, copy_file_range.
 *
 * fi->fh is the real file descriptor.  A file opened only for reading
 * reads straight from whichever layer holds its data; opening for writing
 * copies the data up first.  FLUSH is not implemented on purpose: writes
 * go straight to the local file, so close() has nothing to report, and
 * the kernel stops sending FLUSH after the first ENOSYS (one round trip
 * less per close).
 */
#include "config.h"

#include "copyup.h"
#include "creds.h"
#include "lookup.h"
#include "objref.h"
#include "ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* Flags for the real open.  With the writeback cache the kernel may read
 * a write-only file and handles O_APPEND itself. */
static int real_flags(struct sfs_fs *fs, int flags)
{
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
	if (fs->writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags;
}

/* keep_cache only when the file is unchanged since the last open, so edits
 * made directly in the shared layer show up on the next open. */
static bool cache_still_valid(struct sfs_node *n, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return false;
	g_mutex_lock(&n->cache_lock);
	bool same = n->cache_valid && n->cached_size == st.st_size &&
		    n->cached_mtime.tv_sec == st.st_mtim.tv_sec &&
		    n->cached_mtime.tv_nsec == st.st_mtim.tv_nsec;
	n->cached_size = st.st_size;
	n->cached_mtime = st.st_mtim;
	n->cache_valid = true;
	g_mutex_unlock(&n->cache_lock);
	return same;
}

static int open_node(struct sfs_fs *fs, struct sfs_node *n, int flags)
{
	if (wants_write(flags)) {
		if (fs->read_only)
			return -EROFS;
		int r = sfs_copyup(fs, n, (flags & O_TRUNC) ? SFS_COPY_EMPTY
							     : SFS_COPY_DATA);
		if (r < 0)
			return r;
		return sfs_obj_open(&fs->layers, &n->upper,
				    real_flags(fs, flags));
	}
	const struct sfs_obj *data = sfs_node_data_obj(n);
	if (data->layer == 0)
		return sfs_obj_open(&fs->layers, data, real_flags(fs, flags));
	/* Never touch the shared layer's atimes. */
	return sfs_node_open_lowerdata(fs, n, real_flags(fs, flags) | O_NOATIME);
}

void sfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_node *n = sfs_req_node(req, ino);
	int fd = open_node(fs, n, fi->flags);
	if (fd < 0) {
		sfs_reply_err(req, fd);
		return;
	}
	fi->fh = fd;
	fi->keep_cache = cache_still_valid(n, fd);
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		close(fd);
}

struct create_args {
	int flags;
	mode_t mode;
	int fd;
};

static int make_file(int dirfd, const char *name, void *arg)
{
	struct create_args *a = arg;
	a->fd = openat(dirfd, name, a->flags | O_CREAT | O_EXCL | O_CLOEXEC,
		       a->mode);
	return a->fd < 0 ? -errno : 0;
}

/* Over a whiteout the object is built in workdir and swapped in; the fd
 * stays valid across the rename. */
void sfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct create_args a = {
		.flags = real_flags(fs, fi->flags), .mode = mode, .fd = -1
	};
	struct sfs_node *n;
	struct stat st;
	int r = sfs_create_node(req, sfs_req_node(req, parent), name, false,
				make_file, &a, &n, &st);
	if (r < 0) {
		if (a.fd >= 0)
			close(a.fd);
		sfs_reply_err(req, r);
		return;
	}
	fi->fh = a.fd;
	fi->noflush = 1;
	struct fuse_entry_param e;
	sfs_fill_entry(fs, n, &st, &e);
	if (fuse_reply_create(req, &e, fi) != 0) {
		close(a.fd);
		sfs_node_forget(fs->table, n, 1);
	}
}

void sfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	/* Hand the fd to libfuse: it splices when the kernel allows. */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void sfs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		      off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fi->fh;
	out.buf[0].pos = off;
	ssize_t n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

void sfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	close(fi->fh);
	fuse_reply_err(req, 0);
}

void sfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi)
{
	int r = datasync ? fdatasync(fi->fh) : fsync(fi->fh);
	fuse_reply_err(req, r ? errno : 0);
}

void sfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		      off_t len, struct fuse_file_info *fi)
{
	fuse_reply_err(req, fallocate(fi->fh, mode, off, len) ? errno : 0);
}

void sfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		  struct fuse_file_info *fi)
{
	off_t r = lseek(fi->fh, off, whence);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

void sfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			    struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			    off_t off_out, struct fuse_file_info *fi_out,
			    size_t len, int flags)
{
	ssize_t n = copy_file_range(fi_in->fh, &off_in, fi_out->fh, &off_out,
				    len, flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, n);
}
