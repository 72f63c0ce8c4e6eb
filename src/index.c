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

/* The pending count on disk: >= 0, or -errno. */
static int read_pending(struct sfs_fs *fs, const char *idx)
{
	uint64_t v;
	int r = sfs_getxattr_u64(fs->layers.index_fd, idx, fs->layers.xa.nlink,
				 &v);
	return r <= 0 ? r : (int)MIN(v, (uint64_t)G_MAXINT);
}

static int write_pending(struct sfs_fs *fs, const char *idx, gint v)
{
	char val[16];
	int len = snprintf(val, sizeof(val), "%d", v);
	return sfs_setxattr_at(fs->layers.index_fd, idx, fs->layers.xa.nlink,
			       val, len);
}

int sfs_index_attach(struct sfs_fs *fs, struct sfs_node *n)
{
	char idx[24];
	index_name(n->ino, idx);
	int ifd = fs->layers.index_fd;
	struct stat st;
	if (fstatat(ifd, idx, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	int meta = sfs_is_metacopy_at(&fs->layers, ifd, idx);
	int pending = meta < 0 ? meta : read_pending(fs, idx);
	if (pending < 0)
		return pending;
	int r = sfs_obj_at(&fs->layers, ifd, idx, 0, false, &n->upper);
	if (r < 0)
		return r;
	/* Not yet hashed: plain stores are fine. */
	n->has_upper = 1;
	n->upper_real_ino = st.st_ino;
	n->indexed = 1;
	n->metacopy = meta;
	n->lower_pending = pending;
	return 0;
}

int sfs_index_check(struct sfs_fs *fs, struct sfs_node *n,
		    const struct stat *ust)
{
	if (!S_ISREG(ust->st_mode) || ust->st_nlink < 2)
		return 0;
	char idx[24];
	index_name(n->ino, idx);
	struct stat st;
	if (fstatat(fs->layers.index_fd, idx, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (st.st_ino != ust->st_ino || st.st_dev != ust->st_dev)
		return 0;
	int pending = read_pending(fs, idx);
	if (pending < 0)
		return pending;
	n->indexed = 1;
	n->lower_pending = pending;
	return 0;
}

int sfs_index_add(struct sfs_fs *fs, struct sfs_node *n, int obj,
		  nlink_t lower_nlink)
{
	char idx[24];
	index_name(n->ino, idx);
	int r = sfs_link_obj(&fs->layers, &(struct sfs_obj){ .fd = obj },
			     fs->layers.index_fd, idx);
	if (r == 0)
		r = write_pending(fs, idx, (gint)lower_nlink - 1);
	if (r < 0)
		sfs_index_drop(fs, n);
	return r;
}

void sfs_index_drop(struct sfs_fs *fs, struct sfs_node *n)
{
	char idx[24];
	index_name(n->ino, idx);
	unlinkat(fs->layers.index_fd, idx, 0); /* else: an unused entry */
}

void sfs_index_added(struct sfs_node *n, nlink_t lower_nlink)
{
	g_atomic_int_set(&n->lower_pending, (gint)lower_nlink - 1);
	g_atomic_int_set(&n->indexed, 1);
}

int sfs_index_link(struct sfs_fs *fs, struct sfs_node *n)
{
	char idx[24];
	index_name(n->ino, idx);
	int dirfd = sfs_node_upper(n->parent);
	/* The count first, so that a failure anywhere leaves it matching
	 * the names on disk. */
	int pending = read_pending(fs, idx);
	struct stat ust;
	if (fstatat(fs->layers.index_fd, idx, &ust, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? -ENOENT : -errno;
	int meta = sfs_is_metacopy_at(&fs->layers, fs->layers.index_fd, idx);
	if (pending < 0 || meta < 0)
		return pending < 0 ? pending : meta;
	int r = write_pending(fs, idx, MAX(pending - 1, 0));
	if (r < 0)
		return r;
	if (linkat(fs->layers.index_fd, idx, dirfd, n->name, 0) != 0) {
		r = -errno;
		write_pending(fs, idx, pending); /* else one name too few */
		return r;
	}
	struct sfs_obj up;
	r = sfs_obj_at(&fs->layers, dirfd, n->name, 0, false, &up);
	if (r < 0)
		return r; /* the name is linked: the next lookup finds it */
	g_atomic_int_set(&n->metacopy, meta);
	g_atomic_int_set(&n->lower_pending, MAX(pending - 1, 0));
	g_atomic_int_set(&n->indexed, 1);
	sfs_table_set_upper(fs->table, n, &up, ust.st_ino);
	return 0;
}

int sfs_index_name_leaving(struct sfs_fs *fs, struct sfs_node *n)
{
	if (!g_atomic_int_get(&n->indexed))
		return 0;
	char idx[24];
	index_name(n->ino, idx);
	return write_pending(fs, idx,
			     MAX(g_atomic_int_get(&n->lower_pending) - 1, 0));
}

void sfs_index_name_left(struct sfs_fs *fs, struct sfs_node *n, bool done)
{
	if (!g_atomic_int_get(&n->indexed))
		return;
	gint pending = g_atomic_int_get(&n->lower_pending);
	if (done) {
		g_atomic_int_set(&n->lower_pending, MAX(pending - 1, 0));
		return;
	}
	char idx[24];
	index_name(n->ino, idx);
	int r = write_pending(fs, idx, pending);
	if (r < 0)
		sfs_warn("index %s: cannot restore the link count: %s", idx,
			 g_strerror(-r));
}

nlink_t sfs_index_nlink(const struct sfs_node *n, nlink_t local)
{
	nlink_t names = local > 0 ? local - 1 : 0;
	return names + (nlink_t)g_atomic_int_get(&n->lower_pending);
}
