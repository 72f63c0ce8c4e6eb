/* redirect.c - where a local object's shared counterpart lives
 * (see redirect.h). */
#include "config.h"

#include "lower.h"
#include "objref.h"
#include "redirect.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* attr of dirfd/name as a string in *out, NULL when there is none; a
 * failed read is an error, never "none" (that would send a metadata copy
 * to the wrong data, or a renamed directory to the wrong contents). */
static int get_str(int dirfd, const char *name, const char *attr, char **out)
{
	char buf[PATH_MAX + 16];
	*out = NULL;
	ssize_t n = sfs_getxattr_at(dirfd, name, attr, buf, sizeof(buf) - 1);
	if (n == 0 || n == -ENODATA || n == -ENOTSUP)
		return 0;
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	*out = g_strdup(buf);
	return 0;
}

/* scratchfs's own record: "LAYER:/path". */
static int from_lowerdata(struct sfs_fs *fs, const char *val,
			  struct sfs_obj *o, char **rel)
{
	char *colon = strchr(val, ':');
	int l = atoi(val);
	if (!colon || colon[1] != '/' || l < 1 || l > fs->layers.nlower)
		return -EIO;
	const char *path = colon[2] ? colon + 2 : ".";
	int r = sfs_obj_at(&fs->layers, fs->layers.lower[l - 1].fd, path, l,
			   false, o);
	if (r == 0)
		*rel = g_strdup(path);
	return r;
}

/* An absolute path from the top of the shared layers. */
static int from_absolute(struct sfs_fs *fs, const char *path,
			 struct sfs_obj *o, char **rel)
{
	for (int i = 0; i < fs->layers.nlower; i++) {
		struct stat st;
		int lfd = fs->layers.lower[i].fd;
		if (fstatat(lfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int r = sfs_obj_at(&fs->layers, lfd, path, i + 1, false, o);
		if (r == 0)
			*rel = g_strdup(path);
		return r;
	}
	return -ENOENT;
}

/* A name in the parent's shared directories. */
static int from_parent(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, struct sfs_obj *o, char **rel)
{
	guint i = 0;
	struct stat st;
	int r = sfs_lower_find(parent, name, &i, &st);
	if (r <= 0 || !S_ISREG(st.st_mode))
		return r < 0 ? r : -ENOENT;
	struct sfs_lowerdir *pd =
		&g_array_index(parent->lowerdirs, struct sfs_lowerdir, i);
	r = sfs_obj_at(&fs->layers, pd->fd, name, pd->layer, false, o);
	g_autofree char *dir = sfs_lower_path(fs, pd->fd, pd->layer);
	if (r == 0 && dir)
		*rel = g_build_filename(dir + 1, name, NULL);
	return r;
}

int sfs_find_lowerdata(struct sfs_fs *fs, struct sfs_node *parent, int pfd,
		       const char *name, struct sfs_obj *o, char **rel)
{
	const struct sfs_xattr_names *xa = &fs->layers.xa;
	g_autofree char *own = NULL;
	g_autofree char *redir = NULL;
	int r = get_str(pfd, name, xa->lowerdata, &own);
	if (r < 0)
		return r;
	if (own)
		return from_lowerdata(fs, own, o, rel);
	r = get_str(pfd, name, xa->redirect, &redir);
	if (r < 0)
		return r;
	if (redir && redir[0] == '/')
		return from_absolute(fs, redir[1] ? redir + 1 : ".", o, rel);
	return from_parent(fs, parent, redir ? redir : name, o, rel);
}

static int absolute_dirs(struct sfs_fs *fs, const char *path, GArray **dirs)
{
	for (int i = 0; i < fs->layers.nlower; i++) {
		int fd = openat(fs->layers.lower[i].fd, path,
				O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
			continue; /* not in this layer */
		if (fd < 0)
			return -errno;
		sfs_lowerdirs_add(dirs, fd, i + 1);
		int opaque = sfs_is_opaque(&fs->layers, fd);
		if (opaque < 0)
			return opaque;
		if (opaque)
			break;
	}
	return 1;
}

int sfs_redirect_dirs(struct sfs_fs *fs, struct sfs_node *parent, int pfd,
		      const char *name, GArray **dirs)
{
	g_autofree char *redir = NULL;
	int r = get_str(pfd, name, fs->layers.xa.redirect, &redir);
	if (r < 0 || !redir)
		return r;
	if (redir[0] == '/')
		return absolute_dirs(fs, redir[1] ? redir + 1 : ".", dirs);
	r = sfs_collect_lowerdirs(fs, parent, redir, 0, dirs);
	return r < 0 ? r : 1;
}
