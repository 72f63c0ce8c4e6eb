/* ops_table.c - the FUSE operation table, what scratchfs asks of the
 * kernel at INIT, and the counting of requests.
 *
 * The handlers live in ops_*.c by concern.  Each is entered through a
 * wrapper here that counts the request by opcode (one relaxed atomic add,
 * counters.h) and records for this thread why whatever the handler copies
 * up is copied (sfs_request_reason(), named in copyup.c's loglevel=info
 * line).  The handlers themselves know nothing of it.
 *
 * Errors are counted where every handler's error goes out: the program
 * is linked with --wrap=fuse_reply_err (Makefile.am), so the handlers'
 * calls of fuse_reply_err() land in __wrap_fuse_reply_err() below, which
 * counts and passes on.  One place instead of forty reply sites.
 */
#include "config.h"

#include "ops.h"

#include <fcntl.h>

void sfs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sfs_fs *fs = userdata;
	/* Kernel-side caches are the main lever on FUSE latency. */
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* venvs are full of symlinks (bin/python, uv's wheel links): the
	 * kernel keeps their targets. */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (fs->no_open) {
		/* Without OPEN the kernel would skip O_TRUNC when it believes
		 * the open did it: make it send a SETATTR instead. */
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
		if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)
			conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
		else
			fs->no_open = false;
	}
	if (fs->no_opendir) {
		if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)
			conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		else
			fs->no_opendir = false;
	}
	/* Locks stay local to this kernel: the kernel handles flock and
	 * POSIX locks itself when we do not claim them. */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

static inline void enter(fuse_req_t req, enum sfs_opcode op, const char *why)
{
	sfs_count_op(&sfs_req_fs(req)->counters, op);
	sfs_set_request_reason(why);
}

int __real_fuse_reply_err(fuse_req_t req, int err);
int __wrap_fuse_reply_err(fuse_req_t req, int err);

int __wrap_fuse_reply_err(fuse_req_t req, int err)
{
	if (err)
		sfs_count_error(&sfs_req_fs(req)->counters, err);
	return __real_fuse_reply_err(req, err);
}

/* SETATTR says which attributes change: the reason names the syscall. */
static const char *setattr_reason(int valid)
{
	if (valid & FUSE_SET_ATTR_SIZE)
		return "truncate";
	if (valid & FUSE_SET_ATTR_MODE)
		return "chmod";
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		return "chown";
	return "utimes";
}

static const char *open_reason(int flags)
{
	return (flags & O_ACCMODE) == O_RDONLY && !(flags & O_TRUNC)
		       ? "open"
		       : "open for write";
}

#define COUNTED(op, OPC, why, params, args)                                    \
	static void counted_##op params                                        \
	{                                                                      \
		enter(req, SFS_OPC_##OPC, why);                                \
		sfs_op_##op args;                                              \
	}

COUNTED(lookup, LOOKUP, "lookup",
	(fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
COUNTED(forget, FORGET, "forget",
	(fuse_req_t req, fuse_ino_t ino, uint64_t n), (req, ino, n))
COUNTED(forget_multi, FORGET, "forget",
	(fuse_req_t req, size_t count, struct fuse_forget_data *f),
	(req, count, f))
COUNTED(getattr, GETATTR, "getattr",
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
COUNTED(setattr, SETATTR, setattr_reason(valid),
	(fuse_req_t req, fuse_ino_t ino, struct stat *a, int valid,
	 struct fuse_file_info *fi),
	(req, ino, a, valid, fi))
COUNTED(readlink, READLINK, "readlink", (fuse_req_t req, fuse_ino_t ino),
	(req, ino))
COUNTED(access, ACCESS, "access", (fuse_req_t req, fuse_ino_t ino, int mask),
	(req, ino, mask))
COUNTED(mknod, MKNOD, "mknod",
	(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode,
	 dev_t rdev),
	(req, p, name, mode, rdev))
COUNTED(mkdir, MKDIR, "mkdir",
	(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode),
	(req, p, name, mode))
COUNTED(unlink, UNLINK, "unlink",
	(fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
COUNTED(rmdir, RMDIR, "rmdir",
	(fuse_req_t req, fuse_ino_t p, const char *name), (req, p, name))
COUNTED(symlink, SYMLINK, "symlink",
	(fuse_req_t req, const char *link, fuse_ino_t p, const char *name),
	(req, link, p, name))
COUNTED(rename, RENAME, "rename",
	(fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np,
	 const char *nname, unsigned int flags),
	(req, p, name, np, nname, flags))
COUNTED(link, LINK, "link",
	(fuse_req_t req, fuse_ino_t ino, fuse_ino_t np, const char *nname),
	(req, ino, np, nname))
COUNTED(open, OPEN, open_reason(fi->flags),
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
COUNTED(read, READ, "read",
	(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, size, off, fi))
COUNTED(write_buf, WRITE, "write",
	(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, buf, off, fi))
COUNTED(release, RELEASE, "release",
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
COUNTED(fsync, FSYNC, "fsync",
	(fuse_req_t req, fuse_ino_t ino, int ds, struct fuse_file_info *fi),
	(req, ino, ds, fi))
COUNTED(opendir, OPENDIR, "opendir",
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
COUNTED(readdir, READDIR, "readdir",
	(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, size, off, fi))
COUNTED(readdirplus, READDIRPLUS, "readdirplus",
	(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	 struct fuse_file_info *fi),
	(req, ino, size, off, fi))
COUNTED(releasedir, RELEASEDIR, "releasedir",
	(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	(req, ino, fi))
COUNTED(fsyncdir, FSYNCDIR, "fsyncdir",
	(fuse_req_t req, fuse_ino_t ino, int ds, struct fuse_file_info *fi),
	(req, ino, ds, fi))
COUNTED(statfs, STATFS, "statfs", (fuse_req_t req, fuse_ino_t ino),
	(req, ino))
COUNTED(setxattr, SETXATTR, "setxattr",
	(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
	 size_t size, int flags),
	(req, ino, name, value, size, flags))
COUNTED(getxattr, GETXATTR, "getxattr",
	(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
	(req, ino, name, size))
COUNTED(listxattr, LISTXATTR, "listxattr",
	(fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
COUNTED(removexattr, REMOVEXATTR, "removexattr",
	(fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))
COUNTED(create, CREATE, "create",
	(fuse_req_t req, fuse_ino_t p, const char *name, mode_t mode,
	 struct fuse_file_info *fi),
	(req, p, name, mode, fi))
COUNTED(fallocate, FALLOCATE, "fallocate",
	(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
	 struct fuse_file_info *fi),
	(req, ino, mode, off, len, fi))
COUNTED(lseek, LSEEK, "lseek",
	(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	 struct fuse_file_info *fi),
	(req, ino, off, whence, fi))
COUNTED(copy_file_range, COPY_FILE_RANGE, "copy_file_range",
	(fuse_req_t req, fuse_ino_t in, off_t off_in,
	 struct fuse_file_info *fi_in, fuse_ino_t out, off_t off_out,
	 struct fuse_file_info *fi_out, size_t len, int flags),
	(req, in, off_in, fi_in, out, off_out, fi_out, len, flags))

const struct fuse_lowlevel_ops sfs_ops = {
	.init = sfs_op_init,
	.lookup = counted_lookup,
	.forget = counted_forget,
	.forget_multi = counted_forget_multi,
	.getattr = counted_getattr,
	.setattr = counted_setattr,
	.readlink = counted_readlink,
	.access = counted_access,
	.mknod = counted_mknod,
	.mkdir = counted_mkdir,
	.unlink = counted_unlink,
	.rmdir = counted_rmdir,
	.symlink = counted_symlink,
	.rename = counted_rename,
	.link = counted_link,
	.open = counted_open,
	.read = counted_read,
	.write_buf = counted_write_buf,
	.release = counted_release,
	.fsync = counted_fsync,
	.opendir = counted_opendir,
	.readdir = counted_readdir,
	.readdirplus = counted_readdirplus,
	.releasedir = counted_releasedir,
	.fsyncdir = counted_fsyncdir,
	.statfs = counted_statfs,
	.setxattr = counted_setxattr,
	.getxattr = counted_getxattr,
	.listxattr = counted_listxattr,
	.removexattr = counted_removexattr,
	.create = counted_create,
	.fallocate = counted_fallocate,
	.lseek = counted_lseek,
	.copy_file_range = counted_copy_file_range,
};
