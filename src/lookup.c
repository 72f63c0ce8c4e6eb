/* lookup.c - resolve one name across the layers (see lookup.h). */
#include "config.h"

#include "lookup.h"
#include "copyup.h"
#include "log.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Open name below dirfd as O_PATH and check it is still the object that
 * fstatat() saw (the shared layer may change under us). */
static int open_verified(int dirfd, const char *name, const struct stat *seen)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 ||
	    st.st_ino != seen->st_ino || st.st_dev != seen->st_dev) {
		close(fd);
		return -EAGAIN;
	}
	return fd;
}

static void lowerdirs_add(GArray **dirs, int fd, int layer)
{
	if (!*dirs)
		*dirs = g_array_new(FALSE, FALSE, sizeof(struct sfs_lowerdir));
	struct sfs_lowerdir ld = { .fd = fd, .layer = layer };
	g_array_append_val(*dirs, ld);
}

static void lowerdirs_free(GArray *dirs)
{
	if (!dirs)
		return;
	for (guint i = 0; i < dirs->len; i++)
		close(g_array_index(dirs, struct sfs_lowerdir, i).fd);
	g_array_free(dirs, TRUE);
}

static bool parent_merges(const struct sfs_node *parent)
{
	return parent->lowerdirs && parent->lowerdirs->len &&
	       !g_atomic_int_get(&parent->opaque);
}

/* Collect the shared directories named `name` below parent's shared dirs,
 * starting at position `from`, until an opaque one or a non-directory. */
static int collect_lowerdirs(struct sfs_fs *fs, struct sfs_node *parent,
			     const char *name, guint from, GArray **dirs)
{
	if (!parent_merges(parent))
		return 0;
	for (guint i = from; i < parent->lowerdirs->len; i++) {
		struct sfs_lowerdir *pd =
			&g_array_index(parent->lowerdirs, struct sfs_lowerdir, i);
		struct stat st;
		if (fstatat(pd->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				return -errno;
			if (sfs_has_wh_file(pd->fd, name))
				break;
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			break;
		int fd = open_verified(pd->fd, name, &st);
		if (fd < 0)
			return fd;
		lowerdirs_add(dirs, fd, pd->layer);
		if (sfs_is_opaque(&fs->layers, fd))
			break;
	}
	return 0;
}

char *sfs_lower_path(struct sfs_fs *fs, int fd, int layer)
{
	char p[40], buf[PATH_MAX];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	const char *root = sfs_layer_get(&fs->layers, layer)->path;
	size_t rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (strncmp(buf, root, rl) != 0 || (buf[rl] != '/' && buf[rl] != '\0'))
		return NULL;
	return g_strdup(buf[rl] ? buf + rl : "/");
}

int sfs_open_lowerdata(struct sfs_fs *fs, int upper_fd, int *layer)
{
	char buf[PATH_MAX + 16];
	ssize_t n = sfs_getxattr_fd(upper_fd, fs->layers.xa.lowerdata, buf,
				    sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? (int)n : -EIO;
	buf[n] = '\0';
	char *colon = strchr(buf, ':');
	int l = atoi(buf);
	if (!colon || colon[1] != '/' || l < 1 || l > fs->layers.nlower)
		return -EIO;
	const char *rel = colon[2] ? colon + 2 : ".";
	int fd = openat(fs->layers.lower[l - 1].fd, rel,
			O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*layer = l;
	return fd;
}

/* A shared file with several names, one of which was copied up before:
 * this name shares that local inode (see copyup.c, index). */
static void attach_index(struct sfs_fs *fs, struct sfs_node *n)
{
	char idx[24];
	sfs_index_name(n, idx);
	int fd = openat(fs->layers.index_fd, idx, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) != 0) {
		close(fd);
		return;
	}
	n->upper_fd = fd;
	n->upper_real_ino = st.st_ino;
	n->indexed = 1;
	n->metacopy = sfs_getxattr_fd(fd, fs->layers.xa.metacopy, NULL, 0) >= 0;
}

/* Is this copied-up local file also linked from the index? */
static bool in_index(struct sfs_fs *fs, uint64_t ino, const struct stat *ust)
{
	struct sfs_node probe = { .ino = ino };
	char idx[24];
	sfs_index_name(&probe, idx);
	struct stat st;
	return fstatat(fs->layers.index_fd, idx, &st, 0) == 0 &&
	       st.st_ino == ust->st_ino && st.st_dev == ust->st_dev;
}

/* A local object not yet in the table: find its identity, and what it
 * merges with below. */
static int node_from_upper(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, const struct stat *ust,
			   struct sfs_node **out)
{
	int ufd = open_verified(sfs_node_upper(parent), name, ust);
	if (ufd < 0)
		return ufd;
	uint64_t ino;
	bool copied = sfs_getxattr_u64(sfs_node_upper(parent), name,
				       fs->layers.xa.ino, &ino);
	if (!copied)
		ino = sfs_make_ino(0, ust->st_ino);
	struct sfs_node *n = sfs_table_find_ino(fs->table, ino, true);
	if (n) {
		close(ufd);
		*out = n;
		return 0;
	}
	GArray *dirs = NULL;
	int lfd = -1, llayer = 0;
	bool opaque = false, meta = false;
	if (S_ISDIR(ust->st_mode)) {
		opaque = sfs_is_opaque(&fs->layers, ufd);
		int r = opaque ? 0 : collect_lowerdirs(fs, parent, name, 0, &dirs);
		if (r < 0) {
			close(ufd);
			lowerdirs_free(dirs);
			return r;
		}
	} else if (S_ISREG(ust->st_mode) &&
		   sfs_getxattr_fd(ufd, fs->layers.xa.metacopy, NULL, 0) >= 0) {
		lfd = sfs_open_lowerdata(fs, ufd, &llayer);
		meta = lfd >= 0;
		if (!meta)
			sfs_warn("%s: metadata copy lost its shared data (%s)",
				 name, g_strerror(-lfd));
	}
	n = sfs_node_new(ino, ust->st_mode, ufd, lfd, llayer, dirs);
	n->upper_real_ino = ust->st_ino;
	n->opaque = opaque;
	n->metacopy = meta;
	n->indexed = copied && S_ISREG(ust->st_mode) && ust->st_nlink > 1 &&
		     in_index(fs, ino, ust);
	*out = sfs_table_insert(fs->table, n, parent, name);
	return 0;
}

/* No local object: the topmost shared object, if any, wins. */
static int node_from_lower(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, struct sfs_node **out)
{
	if (!parent_merges(parent))
		return -ENOENT;
	for (guint i = 0; i < parent->lowerdirs->len; i++) {
		struct sfs_lowerdir *pd =
			&g_array_index(parent->lowerdirs, struct sfs_lowerdir, i);
		struct stat st;
		if (fstatat(pd->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				return -errno;
			if (sfs_has_wh_file(pd->fd, name))
				return -ENOENT;
			continue;
		}
		if (sfs_is_whiteout_stat(&st))
			return -ENOENT;
		uint64_t ino = sfs_make_ino(pd->layer, st.st_ino);
		struct sfs_node *n = sfs_table_find_ino(fs->table, ino, true);
		if (n) {
			*out = n;
			return 0;
		}
		int fd = open_verified(pd->fd, name, &st);
		if (fd < 0)
			return fd;
		GArray *dirs = NULL;
		if (S_ISDIR(st.st_mode)) {
			lowerdirs_add(&dirs, dup(fd), pd->layer);
			int r = sfs_is_opaque(&fs->layers, fd)
					? 0
					: collect_lowerdirs(fs, parent, name,
							    i + 1, &dirs);
			if (r < 0) {
				close(fd);
				lowerdirs_free(dirs);
				return r;
			}
		}
		n = sfs_node_new(ino, st.st_mode, -1, fd, pd->layer, dirs);
		if (S_ISREG(st.st_mode) && st.st_nlink > 1)
			attach_index(fs, n);
		*out = sfs_table_insert(fs->table, n, parent, name);
		return 0;
	}
	return -ENOENT;
}

static int lookup_once(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, struct sfs_node **out)
{
	int pu = sfs_node_upper(parent);
	if (pu >= 0) {
		struct stat ust;
		if (fstatat(pu, name, &ust, AT_SYMLINK_NOFOLLOW) == 0) {
			if (sfs_is_whiteout_stat(&ust))
				return -ENOENT;
			*out = sfs_table_find_upper(fs->table, ust.st_ino, true);
			if (*out)
				return 0;
			return node_from_upper(fs, parent, name, &ust, out);
		}
		if (errno != ENOENT)
			return -errno;
		if (parent_merges(parent) && sfs_has_wh_file(pu, name))
			return -ENOENT;
	}
	return node_from_lower(fs, parent, name, out);
}

int sfs_lookup(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
	       struct sfs_node **out, struct stat *st)
{
	if (!S_ISDIR(parent->type))
		return -ENOTDIR;
	if (sfs_is_wh_name(name))
		return -ENOENT; /* markers are never visible */
	int r;
	for (int tries = 0; tries < 5; tries++) {
		r = lookup_once(fs, parent, name, out);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0)
		return r;
	r = sfs_node_getattr(fs, *out, st);
	if (r < 0)
		sfs_node_forget(fs->table, *out, 1);
	return r;
}

int sfs_node_getattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *st)
{
	if (fstatat(sfs_node_fd(n), "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	st->st_ino = n->ino;
	if (g_atomic_int_get(&n->indexed)) {
		/* The index link is not a name; shared names that were never
		 * copied up are (an estimate: the larger of the two counts). */
		struct stat lst;
		nlink_t local = st->st_nlink > 1 ? st->st_nlink - 1 : 1;
		st->st_nlink = local;
		if (n->lower_fd >= 0 &&
		    fstatat(n->lower_fd, "", &lst, AT_EMPTY_PATH) == 0 &&
		    lst.st_nlink > local)
			st->st_nlink = lst.st_nlink;
	}
	if (g_atomic_int_get(&n->metacopy) && n->lower_fd >= 0) {
		/* Data, and so size, still come from the shared file. */
		struct stat lst;
		if (fstatat(n->lower_fd, "", &lst,
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0) {
			st->st_size = lst.st_size;
			st->st_blocks = lst.st_blocks;
		}
	}
	return 0;
}

int sfs_name_exists(struct sfs_fs *fs, struct sfs_node *parent,
		    const char *name)
{
	struct sfs_node *n;
	struct stat st;
	int r = sfs_lookup(fs, parent, name, &n, &st);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	sfs_node_forget(fs->table, n, 1);
	return 1;
}

struct sfs_node *sfs_root_node(struct sfs_fs *fs, GError **err)
{
	struct sfs_layers *l = &fs->layers;
	int ufd = dup(l->upper.fd);
	struct stat st;
	if (ufd < 0 || fstat(ufd, &st) != 0) {
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "%s: %s", l->upper.path, g_strerror(errno));
		return NULL;
	}
	GArray *dirs = NULL;
	bool opaque = sfs_is_opaque(l, ufd);
	for (int i = 0; i < l->nlower && !opaque; i++) {
		lowerdirs_add(&dirs, dup(l->lower[i].fd), i + 1);
		if (sfs_is_opaque(l, l->lower[i].fd))
			break;
	}
	/* The root's identity is fixed: it never moves and never copies up. */
	struct sfs_node *n = sfs_node_new(sfs_make_ino(0, st.st_ino),
					  st.st_mode, ufd, -1, 0, dirs);
	n->upper_real_ino = st.st_ino;
	n->opaque = opaque;
	n->name = g_strdup("");
	return n;
}

int sfs_lookup_created(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, bool opaque, struct sfs_node **out,
		       struct stat *st)
{
	int fd = openat(sfs_node_upper(parent), name,
			O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* A brand-new local object: its own inode number is its identity,
	 * and nothing below merges into it. */
	struct sfs_node *n = sfs_node_new(sfs_make_ino(0, st->st_ino),
					  st->st_mode, fd, -1, 0, NULL);
	n->upper_real_ino = st->st_ino;
	n->opaque = opaque;
	*out = sfs_table_insert(fs->table, n, parent, name);
	st->st_ino = (*out)->ino;
	return 0;
}
