/* lower.c - the stack of shared directories behind a node
 * (see lower.h). */
#include "config.h"

#include "health.h"
#include "lower.h"
#include "sys.h"
#include "whiteout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Open name below dirfd as O_PATH and check it is still the object that
 * fstatat() saw (the shared layer may change under us). */
int sfs_open_verified(int dirfd, const char *name, const struct stat *seen)
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

void sfs_lowerdirs_add(GArray **dirs, int fd, int layer)
{
	if (!*dirs)
		*dirs = g_array_new(FALSE, FALSE, sizeof(struct sfs_lowerdir));
	struct sfs_lowerdir ld = { .fd = fd, .layer = layer };
	g_array_append_val(*dirs, ld);
}

int sfs_lower_find(struct sfs_node *parent, const char *name, guint *i,
		   struct stat *st)
{
	if (!sfs_node_merges(parent))
		return 0;
	for (; *i < parent->lowerdirs->len; (*i)++) {
		struct sfs_lowerdir *ld =
			&g_array_index(parent->lowerdirs, struct sfs_lowerdir, *i);
		if (fstatat(ld->fd, name, st, AT_SYMLINK_NOFOLLOW) == 0) {
			sfs_health_note(ld->layer, 0);
			return sfs_is_whiteout_stat(st) ? 0 : 1;
		}
		/* Not here: unless a ".wh." marker hides it below. */
		int r = errno == ENOENT ? sfs_has_wh_file(ld->fd, name) : -errno;
		sfs_health_note(ld->layer, r);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return 0;
}

int sfs_lower_visible(struct sfs_fs *fs, struct sfs_node *parent,
		      const char *name)
{
	guint i = 0;
	struct stat st;
	return sfs_lower_find(parent, name, &i, &st);
}

/* Collect the shared directories named `name` below parent's shared dirs,
 * starting at position `from`, until an opaque one or a non-directory. */
int sfs_collect_lowerdirs(struct sfs_fs *fs, struct sfs_node *parent,
			  const char *name, guint from, GArray **dirs)
{
	struct stat st;
	int r;
	for (guint i = from; (r = sfs_lower_find(parent, name, &i, &st)) > 0; i++) {
		struct sfs_lowerdir *pd =
			&g_array_index(parent->lowerdirs, struct sfs_lowerdir, i);
		if (!S_ISDIR(st.st_mode))
			break;
		int fd = sfs_open_verified(pd->fd, name, &st);
		if (fd < 0)
			return fd;
		sfs_lowerdirs_add(dirs, fd, pd->layer);
		int opaque = sfs_is_opaque(&fs->layers, fd);
		if (opaque < 0)
			return opaque;
		if (opaque)
			break;
	}
	return r < 0 ? r : 0;
}

char *sfs_lower_path(struct sfs_fs *fs, int fd, int layer)
{
	char p[SFS_FD_PATH_LEN], buf[PATH_MAX];
	ssize_t n = readlink(sfs_fd_path(p, fd), buf, sizeof(buf) - 1);
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

/* Path of n's shared object inside its layer, from the parent's shared
 * directory of that layer: an fd opened from a file handle may carry a
 * disconnected dentry whose path says nothing. */
char *sfs_lower_rel_path(struct sfs_fs *fs, struct sfs_node *n)
{
	GArray *dirs = n->parent->lowerdirs;
	for (guint i = 0; dirs && i < dirs->len; i++) {
		struct sfs_lowerdir *d = &g_array_index(dirs, struct sfs_lowerdir, i);
		if (d->layer != n->lower.layer)
			continue;
		g_autofree char *dir = sfs_lower_path(fs, d->fd, d->layer);
		if (!dir)
			return NULL;
		return g_build_filename(dir, n->name, NULL);
	}
	return NULL;
}
