/* index.c - shared-layer hardlinks stay one file (see index.h). */
#include "config.h"

#include "index.h"
#include "log.h"
#include "objref.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

static void index_name(uint64_t ino, char buf[24])
{
	snprintf(buf, 24, "%016" PRIx64, ino);
}

static gint read_pending(struct sfs_fs *fs, const char *idx)
{
	uint64_t v;
	if (!sfs_getxattr_u64(fs->layers.index_fd, idx, fs->layers.xa.nlink, &v))
		return 0;
	return (gint)MIN(v, (uint64_t)G_MAXINT);
}

static void write_pending(struct sfs_fs *fs, struct sfs_node *n, gint v)
{
	char idx[24], val[16];
	index_name(n->ino, idx);
	int len = snprintf(val, sizeof(val), "%d", v);
	g_atomic_int_set(&n->lower_pending, v);
	int r = sfs_setxattr_at(fs->layers.index_fd, idx, fs->layers.xa.nlink,
				val, len);
	if (r < 0)
		sfs_warn("index %s: %s", idx, g_strerror(-r));
}

int sfs_index_attach(struct sfs_fs *fs, struct sfs_node *n)
{
	char idx[24];
	index_name(n->ino, idx);
	int ifd = fs->layers.index_fd;
	struct stat st;
	if (fstatat(ifd, idx, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	int r = sfs_obj_at(&fs->layers, ifd, idx, 0, false, &n->upper);
	if (r < 0)
		return r;
	/* Not yet hashed: plain stores are fine. */
	n->has_upper = 1;
	n->upper_real_ino = st.st_ino;
	n->indexed = 1;
	n->metacopy = sfs_is_metacopy_at(&fs->layers, ifd, idx);
	n->lower_pending = read_pending(fs, idx);
	return 0;
}

void sfs_index_check(struct sfs_fs *fs, struct sfs_node *n,
		     const struct stat *ust)
{
	if (!S_ISREG(ust->st_mode) || ust->st_nlink < 2)
		return;
	char idx[24];
	index_name(n->ino, idx);
	struct stat st;
	if (fstatat(fs->layers.index_fd, idx, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    st.st_ino != ust->st_ino || st.st_dev != ust->st_dev)
		return;
	n->indexed = 1;
	n->lower_pending = read_pending(fs, idx);
}

void sfs_index_add(struct sfs_fs *fs, struct sfs_node *n, int obj,
		   nlink_t lower_nlink)
{
	char idx[24];
	index_name(n->ino, idx);
	if (sfs_link_obj(&fs->layers, &(struct sfs_obj){ .fd = obj }, 
			 fs->layers.index_fd, idx) != 0) {
		sfs_warn("%s: cannot index shared hardlink: %s", n->name,
			 g_strerror(errno));
		return;
	}
	write_pending(fs, n, (gint)lower_nlink - 1);
	g_atomic_int_set(&n->indexed, 1);
}

int sfs_index_link(struct sfs_fs *fs, struct sfs_node *n)
{
	char idx[24];
	index_name(n->ino, idx);
	int dirfd = sfs_node_upper(n->parent);
	if (linkat(fs->layers.index_fd, idx, dirfd, n->name, 0) != 0)
		return -errno;
	struct stat ust;
	struct sfs_obj up;
	if (fstatat(dirfd, n->name, &ust, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	int r = sfs_obj_at(&fs->layers, dirfd, n->name, 0, false, &up);
	if (r < 0)
		return r;
	g_atomic_int_set(&n->metacopy, sfs_is_metacopy_at(&fs->layers, dirfd, n->name));
	g_atomic_int_set(&n->indexed, 1);
	write_pending(fs, n, MAX(read_pending(fs, idx) - 1, 0));
	sfs_table_set_upper(fs->table, n, &up, ust.st_ino);
	return 0;
}

void sfs_index_name_gone(struct sfs_fs *fs, struct sfs_node *n)
{
	if (!g_atomic_int_get(&n->indexed))
		return;
	write_pending(fs, n, MAX(g_atomic_int_get(&n->lower_pending) - 1, 0));
}

nlink_t sfs_index_nlink(const struct sfs_node *n, nlink_t local)
{
	nlink_t names = local > 0 ? local - 1 : 0;
	return names + (nlink_t)g_atomic_int_get(&n->lower_pending);
}
