/* ops_file.c - file data: open/create, read/write, release, fsync,
 * fallocate, lseek, copy_file_range.
 *
 * Two modes (fs->no_open, `-o no_open`):
 *  - open per open(2): OPEN opens the real file, fi->fh carries it, and
 *    opening for writing copies the data up first;
 *  - no_open (default): OPEN answers ENOSYS once, after which the kernel
 *    sends no OPEN or RELEASE at all and keeps the page cache across
 *    opens (invalidated when the attributes show a change).  Each I/O
 *    request then opens the real file for its own duration, and the
 *    first write copies the data up.  An open/read/close of a cached
 *    file costs no round trip.
 * FLUSH is never implemented: writes go straight to the local file, so
 * close() has nothing to report, and the kernel stops sending it.
 *
 * fi->fh is the real fd plus one, so that 0 means "no fd of its own".
 */
#include "config.h"

#include "attr.h"
#include "copyup.h"
#include "creds.h"
#include "lookup.h"
#include "objref.h"
#include "kernel_io.h"
#include "ops.h"
#include "usage.h"
#include "passthrough.h"

#include <fcntl.h>
#include <linux/falloc.h>
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

/* keep_cache only when the file is unchanged since the last look, so
 * edits made directly in the shared layer show up on the next open. */
static bool cache_still_valid(struct sfs_node *n, const struct stat *st)
{
	return sfs_node_data_unchanged(n, st);
}

static int open_for_read(struct sfs_fs *fs, struct sfs_node *n, int flags)
{
	const struct sfs_obj *data = sfs_node_data_obj(n);
	if (data->layer == 0 && g_atomic_int_get(&n->metacopy))
		return -EIO; /* its shared data is gone */
	if (data->layer == 0)
		return sfs_obj_open(&fs->layers, data, flags);
	/* Never touch the shared layer's atimes. */
	return sfs_node_open_lowerdata(fs, n, flags | O_NOATIME);
}

static int open_for_write(struct sfs_fs *fs, struct sfs_node *n, int flags)
{
	if (fs->read_only)
		return -EROFS;
	int r = sfs_copyup(fs, n, (flags & O_TRUNC) ? SFS_COPY_EMPTY
						     : SFS_COPY_DATA);
	return r < 0 ? r : sfs_obj_open(&fs->layers, &n->upper, flags);
}

static int open_node(struct sfs_fs *fs, struct sfs_node *n, int flags)
{
	if (n->data_lost)
		return -EIO; /* the sparse local file would read as zeros */
	flags = real_flags(fs, flags);
	return wants_write(flags) ? open_for_write(fs, n, flags)
				  : open_for_read(fs, n, flags);
}

/* The fd an I/O request works on: the handle's own, or one opened just
 * for this request (no_open mode). */
struct io_fd {
	int fd;
	bool own;
};

static int io_open(struct sfs_fs *fs, fuse_ino_t ino,
		   struct fuse_file_info *fi, bool write, struct io_fd *io)
{
	io->fd = sfs_fd_from_fh(fi);
	io->own = false;
	if (io->fd >= 0)
		return 0;
	struct sfs_node *n = sfs_node_from_id(fs->table, ino);
	io->fd = write ? open_for_write(fs, n, O_WRONLY) : open_node(fs, n, O_RDONLY);
	io->own = io->fd >= 0;
	return io->fd < 0 ? io->fd : 0;
}

static void io_close(struct io_fd *io)
{
	if (io->own)
		close(io->fd);
	io->own = false;
}

/* Measured (tests/bench/RESULTS.md): a backing file made reads of cold
 * files 1.45x faster but warm opens of small files 1.3x slower (an extra
 * open and two ioctls per open, where keep_cache needs no READ at all).
 * So reads pass through from this size on.  Writes come to the daemon,
 * which counts what they allocate (usage.c: the local layer's size and
 * upper_limit); they pass through only where the kernel demands it, an
 * inode already open with a backing file (passthrough.c). */
#define SFS_PT_MIN_SIZE (128 * 1024)

/* With passthrough on, count the open and pick its kind (passthrough.c);
 * a passthrough open must not ask for keep_cache.  size < 0: a new file. */
static int open_kind(struct sfs_fs *fs, fuse_ino_t ino, struct sfs_node *n,
		     int fd, off_t size, struct fuse_file_info *fi)
{
	fi->fh = sfs_fh_from_fd(fd);
	if (!sfs_kio_passthrough())
		return 0;
	bool write = wants_write(fi->flags);
	bool prefer = !write && size >= SFS_PT_MIN_SIZE;
	int64_t bit = sfs_pt_open(fs, ino, n, write, prefer);
	if (bit < 0)
		return (int)bit;
	fi->fh |= (uint64_t)bit;
	if (bit)
		fi->keep_cache = 0;
	return 0;
}

static void release_fh(struct sfs_fs *fs, fuse_ino_t ino, uint64_t fh)
{
	int fd = (int)(fh & 0xffffffffu) - 1;
	if (fd >= 0)
		close(fd);
	if (sfs_kio_passthrough())
		sfs_pt_release(fs, ino, fh);
}

void sfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	if (fs->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	struct sfs_node *n = sfs_req_node(req, ino);
	int fd = open_node(fs, n, fi->flags);
	if (fd < 0) {
		sfs_reply_err(req, fd);
		return;
	}
	struct stat st;
	bool have_st = fstat(fd, &st) == 0;
	fi->keep_cache = have_st && cache_still_valid(n, &st);
	fi->noflush = 1;
	int r = open_kind(fs, ino, n, fd, have_st ? st.st_size : 0, fi);
	if (r < 0) {
		close(fd);
		sfs_reply_err(req, r);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		release_fh(fs, ino, fi->fh);
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
	if (fs->no_open) {
		/* Like every other open in this mode: no fd of its own. */
		close(a.fd);
		a.fd = -1;
	}
	fi->noflush = 1;
	struct fuse_entry_param e;
	sfs_fill_entry(fs, n, &st, true, &e);
	r = open_kind(fs, e.ino, n, a.fd, -1, fi);
	if (r < 0) {
		if (a.fd >= 0)
			close(a.fd);
		sfs_node_forget(fs->table, n, 1);
		sfs_reply_err(req, r);
		return;
	}
	if (fuse_reply_create(req, &e, fi) != 0) {
		release_fh(fs, e.ino, fi->fh);
		sfs_node_forget(fs->table, n, 1);
	}
}

void sfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct io_fd io;
	int r = io_open(sfs_req_fs(req), ino, fi, false, &io);
	if (r < 0) {
		sfs_reply_err(req, r);
		return;
	}
	/* Hand the fd to libfuse: it splices when the kernel allows, and
	 * is done with the fd when this returns. */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = io.fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	io_close(&io);
}

void sfs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		      off_t off, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct io_fd io;
	int r = io_open(fs, ino, fi, true, &io);
	if (r < 0) {
		sfs_reply_err(req, r);
		return;
	}
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = io.fd;
	out.buf[0].pos = off;
	/* With the writeback cache the kernel owns mtime (it sends it with
	 * a SETATTR); data written back later must not move it. */
	struct stat before;
	bool keep_mtime = fs->writeback && fstat(io.fd, &before) == 0;
	struct sfs_charge ch;
	ssize_t n = sfs_usage_begin(fs, io.fd, off, fuse_buf_size(in), &ch);
	if (n == 0) {
		n = fuse_buf_copy(&out, in, 0);
		sfs_usage_end(fs, &ch);
	}
	if (keep_mtime) {
		struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, before.st_mtim };
		futimens(io.fd, t);
	}
	io_close(&io);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

void sfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	release_fh(sfs_req_fs(req), ino, fi->fh);
	fuse_reply_err(req, 0);
}

void sfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct sfs_node *n = sfs_req_node(req, ino);
	struct io_fd io = { sfs_fd_from_fh(fi), false };
	if (io.fd < 0 && !sfs_node_has_upper(n)) {
		fuse_reply_err(req, 0); /* nothing local to flush */
		return;
	}
	if (io.fd < 0) {
		io.fd = sfs_obj_open(&fs->layers, &n->upper, O_RDONLY);
		io.own = io.fd >= 0;
	}
	int e = io.fd < 0 ? -io.fd : 0;
	if (!e && (datasync ? fdatasync(io.fd) : fsync(io.fd)) != 0)
		e = errno;
	io_close(&io);
	fuse_reply_err(req, e);
}

void sfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		      off_t len, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct io_fd io;
	struct sfs_charge ch;
	int r = io_open(fs, ino, fi, true, &io);
	if (r == 0)
		r = sfs_usage_begin(fs, io.fd, off,
				    mode & FALLOC_FL_PUNCH_HOLE ? 0 : len, &ch);
	if (r == 0) {
		if (fallocate(io.fd, mode, off, len) != 0)
			r = -errno;
		sfs_usage_end(fs, &ch);
	}
	io_close(&io);
	fuse_reply_err(req, -r);
}

void sfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		  struct fuse_file_info *fi)
{
	struct io_fd io;
	int r = io_open(sfs_req_fs(req), ino, fi, false, &io);
	off_t pos = r < 0 ? r : lseek(io.fd, off, whence);
	if (r == 0 && pos < 0)
		r = -errno;
	io_close(&io);
	if (r < 0)
		sfs_reply_err(req, r);
	else
		fuse_reply_lseek(req, pos);
}

void sfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			    struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			    off_t off_out, struct fuse_file_info *fi_out,
			    size_t len, int flags)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	struct io_fd in, out = { -1, false };
	int r = io_open(fs, ino_in, fi_in, false, &in);
	if (r == 0)
		r = io_open(fs, ino_out, fi_out, true, &out);
	struct sfs_charge ch;
	if (r == 0)
		r = sfs_usage_begin(fs, out.fd, off_out, len, &ch);
	ssize_t n = r < 0 ? r
			  : copy_file_range(in.fd, &off_in, out.fd, &off_out,
					    len, flags);
	if (r == 0)
		sfs_usage_end(fs, &ch);
	if (r == 0 && n < 0)
		r = -errno;
	io_close(&in);
	io_close(&out);
	if (r < 0)
		sfs_reply_err(req, r);
	else
		fuse_reply_write(req, n);
}
