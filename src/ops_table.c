/* ops_table.c - the FUSE operation table, and what scratchfs asks of the
 * kernel at INIT.  The handlers live in ops_*.c by concern. */
#include "config.h"

#include "ops.h"

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

const struct fuse_lowlevel_ops sfs_ops = {
	.init = sfs_op_init,
	.lookup = sfs_op_lookup,
	.forget = sfs_op_forget,
	.forget_multi = sfs_op_forget_multi,
	.getattr = sfs_op_getattr,
	.setattr = sfs_op_setattr,
	.readlink = sfs_op_readlink,
	.access = sfs_op_access,
	.mknod = sfs_op_mknod,
	.mkdir = sfs_op_mkdir,
	.unlink = sfs_op_unlink,
	.rmdir = sfs_op_rmdir,
	.symlink = sfs_op_symlink,
	.rename = sfs_op_rename,
	.link = sfs_op_link,
	.open = sfs_op_open,
	.read = sfs_op_read,
	.write_buf = sfs_op_write_buf,
	.release = sfs_op_release,
	.fsync = sfs_op_fsync,
	.opendir = sfs_op_opendir,
	.readdir = sfs_op_readdir,
	.readdirplus = sfs_op_readdirplus,
	.releasedir = sfs_op_releasedir,
	.fsyncdir = sfs_op_fsyncdir,
	.statfs = sfs_op_statfs,
	.setxattr = sfs_op_setxattr,
	.getxattr = sfs_op_getxattr,
	.listxattr = sfs_op_listxattr,
	.removexattr = sfs_op_removexattr,
	.create = sfs_op_create,
	.fallocate = sfs_op_fallocate,
	.lseek = sfs_op_lseek,
	.copy_file_range = sfs_op_copy_file_range,
};
