/* lookup.c - resolve one name across the layers (see lookup.h). */
#include "config.h"

#include "lookup.h"
#include "attr.h"
#include "lower.h"
#include "objref.h"
#include "index.h"
#include "reclaim.h"
#include "redirect.h"
#include "log.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Only a non-empty regular file can be a metadata-only copy.  (Block
 * counts tell nothing: ext4 may give the xattrs a block of their own.) */
static bool may_be_metacopy(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_size > 0;
}

/* What a local directory merges with below. */
static int upper_dir_setup(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, int fd, bool *opaque,
			   GArray **dirs)
{
	int o = sfs_is_opaque(&fs->layers, fd);
	if (o < 0)
		return o;
	*opaque = o;
	if (*opaque)
		return 0;
	int r = sfs_redirect_dirs(fs, parent, sfs_node_upper(parent), name, dirs);
	return r != 0 ? (r < 0 ? r : 0)
		      : sfs_collect_lowerdirs(fs, parent, name, 0, dirs);
}

/* A local object not yet in the table: find its identity, and what it
 * merges with below. */
static int node_from_upper(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, const struct stat *ust,
			   struct sfs_node **out)
{
	int pfd = sfs_node_upper(parent);
	uint64_t ino;
	int copied = sfs_getxattr_u64(pfd, name, fs->layers.xa.ino, &ino);
	if (copied < 0)
		return copied; /* a guess would give the file a new st_ino */
	if (!copied)
		ino = sfs_make_ino(0, ust->st_ino);
	struct sfs_node *n = sfs_table_find_ino(fs->table, ino, true);
	if (n) {
		*out = n;
		return 0;
	}
	bool is_dir = S_ISDIR(ust->st_mode);
	struct sfs_obj up, low = { .fd = -1 };
	int r = is_dir ? sfs_open_verified(pfd, name, ust) : 0;
	if (r < 0)
		return r;
	if (is_dir)
		r = sfs_obj_from_fd(&fs->layers, r, 0, true, &up);
	else
		r = sfs_obj_at(&fs->layers, pfd, name, 0, false, &up);
	if (r < 0)
		return r;
	GArray *dirs = NULL;
	bool opaque = false, meta = false, lost = false;
	char *rel = NULL;
	if (is_dir) {
		r = upper_dir_setup(fs, parent, name, up.fd, &opaque, &dirs);
	} else if (may_be_metacopy(ust)) {
		int mc = sfs_is_metacopy_at(&fs->layers, pfd, name);
		int e = mc > 0 ? sfs_find_lowerdata(fs, parent, pfd, name, &low,
						    &rel)
			       : MIN(mc, 0);
		meta = mc > 0 && e == 0;
		lost = mc > 0 && (e == -ENOENT || e == -ESTALE);
		/* scratchfs --fsck --repair marked it: known, not news. */
		if (lost && !sfs_is_lost_at(&fs->layers, pfd, name))
			sfs_warn("%s: metadata copy lost its shared data (%s); "
				 "it reads as EIO (see scratchfs --fsck)",
				 name, g_strerror(-e));
		else if (e < 0 && !lost)
			r = e; /* out of fds or memory: not an answer, retry */
	}
	if (r < 0) {
		sfs_obj_clear(&up);
		sfs_obj_clear(&low);
		g_free(rel);
		sfs_lowerdirs_free(dirs);
		return r;
	}
	n = sfs_node_new(ino, ust->st_mode, &up, meta ? &low : NULL, dirs);
	n->upper_real_ino = ust->st_ino;
	n->opaque = opaque;
	n->metacopy = meta;
	n->data_lost = lost;
	n->lowerdata = rel;
	r = copied ? sfs_index_check(fs, n, ust) : 0;
	if (r < 0) {
		sfs_node_free_unhashed(n);
		return r;
	}
	*out = sfs_table_insert(fs->table, n, parent, name);
	return 0;
}

/* A shared directory: it and the same-named ones below it merge. */
static int lower_dir_setup(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, guint i, const struct stat *st,
			   struct sfs_obj *o, GArray **dirs)
{
	struct sfs_lowerdir *pd =
		&g_array_index(parent->lowerdirs, struct sfs_lowerdir, i);
	int fd = sfs_open_verified(pd->fd, name, st);
	if (fd < 0)
		return fd;
	*o = (struct sfs_obj){ .fd = fd, .layer = pd->layer };
	int merged = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (merged < 0)
		return -errno;
	sfs_lowerdirs_add(dirs, merged, pd->layer);
	int opaque = sfs_is_opaque(&fs->layers, fd);
	if (opaque != 0)
		return opaque < 0 ? opaque : 0;
	return sfs_collect_lowerdirs(fs, parent, name, i + 1, dirs);
}

static int new_lower_node(struct sfs_fs *fs, struct sfs_node *parent,
			  const char *name, guint i, const struct stat *st,
			  uint64_t ino, struct sfs_node **out)
{
	struct sfs_lowerdir *pd =
		&g_array_index(parent->lowerdirs, struct sfs_lowerdir, i);
	struct sfs_obj o = { .fd = -1 };
	GArray *dirs = NULL;
	int r = S_ISDIR(st->st_mode)
			? lower_dir_setup(fs, parent, name, i, st, &o, &dirs)
			: sfs_obj_at(&fs->layers, pd->fd, name, pd->layer,
				     false, &o);
	if (r < 0) {
		sfs_obj_clear(&o);
		sfs_lowerdirs_free(dirs);
		return r;
	}
	struct sfs_node *n = sfs_node_new(ino, st->st_mode, NULL, &o, dirs);
	if (S_ISREG(st->st_mode) && st->st_nlink > 1)
		r = sfs_index_attach(fs, n);
	if (r < 0) {
		sfs_node_free_unhashed(n);
		return r;
	}
	*out = sfs_table_insert(fs->table, n, parent, name);
	return 0;
}

/* No local object: the topmost shared object, if any, wins. */
static int node_from_lower(struct sfs_fs *fs, struct sfs_node *parent,
			   const char *name, struct sfs_node **out,
			   struct stat *found)
{
	guint i = 0;
	struct stat st;
	int r = sfs_lower_find(parent, name, &i, &st);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	*found = st;
	int layer = g_array_index(parent->lowerdirs, struct sfs_lowerdir, i).layer;
	uint64_t ino = sfs_make_ino(layer, st.st_ino);
	*out = sfs_table_find_ino(fs->table, ino, true);
	if (*out)
		return 0;
	return new_lower_node(fs, parent, name, i, &st, ino, out);
}

/* *st is set to the attributes of the object that was found by name; the
 * caller uses them only if that object is the node's winning one. */
static int lookup_once(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, struct sfs_node **out, struct stat *st,
		       bool *local)
{
	int pu = sfs_node_upper(parent);
	*local = false;
	if (pu >= 0) {
		struct stat *ust = st;
		if (fstatat(pu, name, ust, AT_SYMLINK_NOFOLLOW) == 0) {
			if (sfs_is_whiteout_stat(ust))
				return -ENOENT;
			*local = true;
			*out = sfs_table_find_upper(fs->table, ust->st_ino, true);
			if (*out)
				return 0;
			return node_from_upper(fs, parent, name, ust, out);
		}
		if (errno != ENOENT)
			return -errno;
		int wh = sfs_node_merges(parent) ? sfs_has_wh_file(pu, name) : 0;
		if (wh != 0)
			return wh < 0 ? wh : -ENOENT;
	}
	return node_from_lower(fs, parent, name, out, st);
}

/* Is the stat made while looking up by name that of the node's winning
 * object?  (Not when a shared name led to a copied-up file.) */
static bool stat_is_nodes(const struct sfs_node *n, const struct stat *st,
			  bool local)
{
	if (sfs_node_has_upper(n))
		return local && st->st_ino == n->upper_real_ino;
	return !local;
}

int sfs_lookup(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
	       struct sfs_node **out, struct stat *st, bool *local_name)
{
	bool local;
	if (!S_ISDIR(parent->type))
		return -ENOTDIR;
	if (sfs_is_wh_name(name))
		return -ENOENT; /* markers are never visible */
	int r;
	SFS_RECLAIM_RETRY(fs->reclaim, r,
			  lookup_once(fs, parent, name, out, st, &local),
			  r == -EAGAIN); /* the shared layer changed meanwhile */
	if (r < 0)
		return r;
	if (local_name)
		*local_name = local;
	if (stat_is_nodes(*out, st, local)) {
		sfs_node_attrs(fs, *out, st);
		return 0;
	}
	r = sfs_node_getattr(fs, *out, st);
	if (r < 0)
		sfs_node_forget(fs->table, *out, 1);
	return r;
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
	int opaque = sfs_is_opaque(l, ufd);
	for (int i = 0; i < l->nlower && opaque == 0; i++) {
		sfs_lowerdirs_add(&dirs, dup(l->lower[i].fd), i + 1);
		int r = sfs_is_opaque(l, l->lower[i].fd);
		if (r != 0) {
			opaque = MIN(r, 0);
			break;
		}
	}
	if (opaque < 0) {
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(-opaque),
			    "%s: reading the opaque mark: %s", l->upper.path,
			    g_strerror(-opaque));
		sfs_lowerdirs_free(dirs);
		close(ufd);
		return NULL;
	}
	/* The root's identity is fixed: it never moves and never copies up. */
	struct sfs_obj up = { .fd = ufd, .layer = 0 };
	struct sfs_node *n = sfs_node_new(sfs_make_ino(0, st.st_ino),
					  st.st_mode, &up, NULL, dirs);
	n->upper_real_ino = st.st_ino;
	n->opaque = opaque;
	n->name = g_strdup("");
	return n;
}

int sfs_lookup_created(struct sfs_fs *fs, struct sfs_node *parent,
		       const char *name, bool opaque, struct sfs_node **out,
		       struct stat *st)
{
	int pfd = sfs_node_upper(parent);
	if (fstatat(pfd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	struct sfs_obj up;
	int r;
	SFS_RECLAIM_RETRY(fs->reclaim, r,
			  sfs_obj_at(&fs->layers, pfd, name, 0,
				     S_ISDIR(st->st_mode), &up),
			  false);
	if (r < 0)
		return r;
	/* A brand-new local object: its own inode number is its identity,
	 * and nothing below merges into it. */
	struct sfs_node *n = sfs_node_new(sfs_make_ino(0, st->st_ino),
					  st->st_mode, &up, NULL, NULL);
	n->upper_real_ino = st->st_ino;
	n->opaque = opaque;
	*out = sfs_table_insert(fs->table, n, parent, name);
	st->st_ino = (*out)->ino;
	return 0;
}
