/* usage.c - the local layer's use and limit (see usage.h). */
#include "config.h"

#include "options.h"
#include "usage.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

struct scan {
	GHashTable *seen;  /* st_ino of inodes with more than one name */
	int64_t bytes, inodes;
};

static int scan_entry(int dirfd, const char *name, void *arg)
{
	struct scan *s = arg;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
	    !g_hash_table_add(s->seen, GSIZE_TO_POINTER(st.st_ino)))
		return 0; /* another name of an inode counted already */
	s->bytes += sfs_alloc_bytes(&st);
	s->inodes++;
	if (!S_ISDIR(st.st_mode))
		return 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return sfs_foreach_entry(fd, scan_entry, s);
}

static int scan_root(int root_opath, struct scan *s)
{
	int fd = openat(root_opath, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : sfs_foreach_entry(fd, scan_entry, s);
}

bool sfs_usage_scan(struct sfs_fs *fs, GError **err)
{
	struct scan s = { .seen = g_hash_table_new(NULL, NULL) };
	int r = scan_root(fs->layers.upper.fd, &s);
	if (r == 0)
		r = scan_root(fs->layers.work_fd, &s);
	g_hash_table_destroy(s.seen);
	if (r < 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "%s: counting what the local layer holds: %s",
			    fs->layers.upper.path, g_strerror(-r));
		return false;
	}
	fs->counters.upper_bytes = s.bytes;
	fs->counters.upper_inodes = s.inodes;
	return true;
}

void sfs_usage_add(struct sfs_fs *fs, int64_t bytes, int64_t inodes)
{
	if (bytes)
		__atomic_fetch_add(&fs->counters.upper_bytes, bytes,
				   __ATOMIC_RELAXED);
	if (inodes)
		__atomic_fetch_add(&fs->counters.upper_inodes, inodes,
				   __ATOMIC_RELAXED);
}

/* Add n to *v unless that passes limit (0: none): the check and the add
 * are one step, so concurrent writers cannot both take the last block. */
static bool take(int64_t *v, int64_t n, guint64 limit)
{
	if (!limit || n <= 0) {
		__atomic_fetch_add(v, n, __ATOMIC_RELAXED);
		return true;
	}
	int64_t cur = __atomic_load_n(v, __ATOMIC_RELAXED);
	do {
		if (cur + n > (int64_t)limit)
			return false;
	} while (!__atomic_compare_exchange_n(v, &cur, cur + n, true,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

int sfs_usage_reserve(struct sfs_fs *fs, int64_t bytes, int64_t inodes)
{
	struct sfs_counters *c = &fs->counters;
	if (!take(&c->upper_bytes, bytes, fs->upper_limit))
		return -ENOSPC;
	if (!take(&c->upper_inodes, inodes, fs->inode_limit)) {
		sfs_usage_add(fs, -bytes, 0);
		return -ENOSPC;
	}
	return 0;
}

/* Blocks a write of len at off may allocate: past the end of the file,
 * and inside it as far as the file has holes (a metadata-only copy being
 * filled is all hole). */
static int64_t estimate(const struct stat *st, off_t off, off_t len)
{
	int64_t size = sfs_usage_round(st->st_size);
	int64_t end = sfs_usage_round(off + len);
	int64_t past = MAX(end - size, 0);
	int64_t holes = MAX(size - sfs_alloc_bytes(st), 0);
	int64_t inside = MIN(end, size) - MIN((int64_t)off & ~4095, size);
	return past + MIN(MAX(inside, 0), holes);
}

int sfs_usage_begin(struct sfs_fs *fs, int fd, off_t off, off_t len,
		    struct sfs_charge *c)
{
	struct stat st;
	c->fd = fd;
	c->reserved = 0;
	c->before = -1;
	if (fstat(fd, &st) != 0)
		return 0; /* the change itself will report the problem */
	c->before = sfs_alloc_bytes(&st);
	c->reserved = len > 0 ? estimate(&st, off, len) : 0;
	int r = sfs_usage_reserve(fs, c->reserved, 0);
	if (r < 0)
		c->reserved = 0;
	return r;
}

void sfs_usage_end(struct sfs_fs *fs, struct sfs_charge *c)
{
	struct stat st;
	int64_t delta = 0;
	if (c->before >= 0 && fstat(c->fd, &st) == 0)
		delta = sfs_alloc_bytes(&st) - c->before;
	sfs_usage_add(fs, delta - c->reserved, 0);
	c->reserved = 0;
}

void sfs_usage_settle(struct sfs_fs *fs, int64_t reserved,
		      const struct stat *st)
{
	if (st)
		sfs_usage_add(fs, sfs_alloc_bytes(st) - reserved, 0);
}

int sfs_whiteout_made(struct sfs_fs *fs, int r)
{
	if (r == 0)
		sfs_count_add(&fs->counters.whiteouts, 1);
	else
		sfs_usage_add(fs, 0, -1);
	return r;
}

void sfs_usage_name_removed(struct sfs_fs *fs, const struct stat *st)
{
	if (S_ISDIR(st->st_mode) || st->st_nlink <= 1)
		sfs_usage_add(fs, -sfs_alloc_bytes(st), -1);
}

void sfs_usage_statfs(struct sfs_fs *fs, struct statvfs *sv)
{
	const struct sfs_counters *c = &fs->counters;
	if (fs->upper_limit && sv->f_frsize) {
		int64_t used = MAX(__atomic_load_n(&c->upper_bytes,
						   __ATOMIC_RELAXED), 0);
		fsblkcnt_t total = fs->upper_limit / sv->f_frsize;
		fsblkcnt_t left = (guint64)used >= fs->upper_limit
					  ? 0
					  : (fs->upper_limit - used) / sv->f_frsize;
		sv->f_blocks = total;
		sv->f_bfree = MIN(sv->f_bfree, left);
		sv->f_bavail = MIN(sv->f_bavail, left);
	}
	if (fs->inode_limit) {
		int64_t used = MAX(__atomic_load_n(&c->upper_inodes,
						   __ATOMIC_RELAXED), 0);
		fsfilcnt_t left = (guint64)used >= fs->inode_limit
					  ? 0
					  : fs->inode_limit - used;
		sv->f_files = fs->inode_limit;
		sv->f_ffree = MIN(sv->f_ffree, left);
		sv->f_favail = MIN(sv->f_favail, left);
	}
}
