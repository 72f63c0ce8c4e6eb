/* ops.h - helpers shared by the FUSE handlers (ops_*.c).
 *
 * Handlers stay thin: decode the request, call lookup/copyup/readdir,
 * reply.  Errors travel as negative errno until the reply.
 */
#pragma once

#include "fs.h"
#include "reclaim.h"

#include <errno.h>

/* How long the kernel may keep what it learns about a name (see
 * "Caching" in scratchfs(8)).  The local layer changes only through the
 * mount, and a local name hides whatever the shared layers do below it:
 * what is answered from the local layer alone stays true until the kernel
 * itself changes it, so it is cached for a day.  Anything that depends on
 * a shared layer (a shared object, a metadata-only copy's data, a name
 * missing from a directory that merges shared ones) keeps `timeout`, so
 * edits of the shared layer show through. */
#define SFS_LOCAL_TIMEOUT 86400.0

static inline double sfs_local_timeout(const struct sfs_fs *fs)
{
	return MAX(fs->timeout, SFS_LOCAL_TIMEOUT);
}

/* A directory whose listing is the local directory's alone. */
static inline bool sfs_node_local_listing(const struct sfs_node *n)
{
	return sfs_node_has_upper(n) && !sfs_node_merges(n);
}

/* Attributes, and entries of names found in the local directory. */
static inline double sfs_node_timeout(const struct sfs_fs *fs,
				      const struct sfs_node *n)
{
	/* A merged directory's local mtime and link count also change when
	 * scratchfs copies something up into it. */
	if (!sfs_node_has_upper(n) || g_atomic_int_get(&n->metacopy) ||
	    (S_ISDIR(n->type) && !sfs_node_local_listing(n)))
		return fs->timeout;
	return sfs_local_timeout(fs);
}

static inline double sfs_negative_timeout(const struct sfs_fs *fs,
					  const struct sfs_node *parent)
{
	if (!sfs_node_local_listing(parent))
		return fs->timeout;
	return sfs_local_timeout(fs);
}

/* An open file's fh is its fd + 1: 0 means no fd (the kernel sent no
 * OPEN, see no_open in ops_file.c). */
static inline uint64_t sfs_fh_from_fd(int fd)
{
	return (uint64_t)fd + 1;
}

static inline int sfs_fd_from_fh(const struct fuse_file_info *fi)
{
	return fi ? (int)fi->fh - 1 : -1;
}

/* Reply with node n (which already carries the lookup reference). */
void sfs_reply_entry(fuse_req_t req, struct sfs_fs *fs, struct sfs_node *n,
		     const struct stat *st, bool local_name);
void sfs_fill_entry(struct sfs_fs *fs, struct sfs_node *n,
		    const struct stat *st, bool local_name,
		    struct fuse_entry_param *e);

static inline void sfs_reply_err(fuse_req_t req, int negerr)
{
	if (negerr == -EMFILE || negerr == -ENFILE)
		sfs_reclaim_kick(sfs_req_fs(req)->reclaim);
	fuse_reply_err(req, -negerr);
}

/* Before the local name dirfd/name goes (unlink, rmdir, rename over it):
 * if it is its inode's last name, hold the node, and without OPEN
 * (no_open) an O_PATH fd on the inode so open files stay usable where the
 * node keeps only a file handle.  ln receives that node (or NULL) and
 * the name's attributes.  Afterwards sfs_last_name_retire() takes it out
 * of the table if the name was removed, drops the hold, and gives what
 * the object held back to the local layer's count (usage.h). */
struct sfs_last_name {
	struct sfs_node *node; /* pinned, or NULL */
	struct stat st;        /* the name's object; st_mode 0 if none */
};
void sfs_last_name_pin(struct sfs_fs *fs, int dirfd, const char *name,
		       struct sfs_last_name *ln);
void sfs_last_name_retire(struct sfs_fs *fs, struct sfs_last_name *ln,
			  bool removed);

/* parent/name, a name of n that may exist only in a shared layer, is about
 * to be removed or covered: does the index count it among the shared
 * names (1: wrap the change in sfs_index_name_leaving/left), 0, -errno. */
int sfs_shared_name_counts(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, struct sfs_node *n);

/* Create a new local object dirfd/name via make(); handles creating over a
 * whiteout (atomically, marking directories opaque) and caller ownership.
 * On success *out/st hold the new node. */
typedef int (*sfs_make_fn)(int dirfd, const char *name, void *arg);
int sfs_create_node(fuse_req_t req, struct sfs_node *parent, const char *name,
		    bool is_dir, sfs_make_fn make, void *arg,
		    struct sfs_node **out, struct stat *st);

/* The libfuse operation table (ops_table.c). */
extern const struct fuse_lowlevel_ops sfs_ops;

/* Handlers, grouped by file. */
void sfs_op_init(void *userdata, struct fuse_conn_info *conn);
void sfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void sfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void sfs_op_forget_multi(fuse_req_t req, size_t count,
			 struct fuse_forget_data *forgets);
void sfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, dev_t rdev);
void sfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode);
void sfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		    const char *name);
void sfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		 const char *newname);
void sfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void sfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void sfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		   fuse_ino_t newparent, const char *newname,
		   unsigned int flags);

void sfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		    int valid, struct fuse_file_info *fi);
void sfs_op_access(fuse_req_t req, fuse_ino_t ino, int mask);
void sfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void sfs_op_statfs(fuse_req_t req, fuse_ino_t ino);

void sfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode, struct fuse_file_info *fi);
void sfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void sfs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		      off_t off, struct fuse_file_info *fi);
void sfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi);
void sfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		      off_t len, struct fuse_file_info *fi);
void sfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		  struct fuse_file_info *fi);
void sfs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			    struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			    off_t off_out, struct fuse_file_info *fi_out,
			    size_t len, int flags);

void sfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void sfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi);
void sfs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi);
void sfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi);

void sfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     const char *value, size_t size, int flags);
void sfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		     size_t size);
void sfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void sfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
