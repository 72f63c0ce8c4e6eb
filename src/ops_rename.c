/* ops_rename.c - rename(2) and renameat2() across layers.
 *
 * Everything moved is first made local: a file by (metadata-only)
 * copy-up, a directory with shared content by copying up its whole
 * visible tree and marking it opaque — no EXDEV, no redirects to follow
 * later.  A name left behind that still has something below it gets a
 * whiteout atomically (RENAME_WHITEOUT where the local filesystem has it).
 * A directory arriving where a shared directory of that name exists is
 * marked opaque so the two never merge.  A directory replaced by one
 * keeps its whiteouts until it is out of the way: they leave with it.
 */
#include "config.h"

#include "nslock.h"
#include "copyup.h"
#include "index.h"
#include "log.h"
#include "lookup.h"
#include "lower.h"
#include "ops.h"
#include "readdir.h"
#include "usage.h"
#include "whiteout.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct rename_end {
	struct sfs_node *parent;
	const char *name;
	struct sfs_node *node; /* NULL if the name does not exist */
	int below;             /* something visible below in a shared layer */
	int counts;            /* a shared name the index counts (covered) */
	int inside;            /* whiteouts in a directory replaced here */
};

static int lookup_rename_end(struct sfs_fs *fs, struct rename_end *e)
{
	struct stat st;
	e->node = NULL;
	int r = sfs_lookup(fs, e->parent, e->name, &e->node, &st, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	e->below = sfs_lower_visible(fs, e->parent, e->name);
	return e->below < 0 ? e->below : 0;
}

/* Make the moving object, and its name, local. */
static int copy_up_moving(struct sfs_fs *fs, struct rename_end *e)
{
	struct sfs_node *n = e->node;
	if (S_ISDIR(n->type) && sfs_node_has_lower(n))
		return sfs_copyup_tree(fs, n);
	int r = sfs_copyup(fs, n, SFS_COPY_META);
	return r ? r : sfs_copyup_name(fs, e->parent, e->name, n);
}

/* A directory arriving at a name with a shared directory below is
 * marked opaque, so the two never merge. */
static int opaque_over_shared_dir(struct sfs_fs *fs, struct sfs_node *n,
				  int below)
{
	if (!S_ISDIR(n->type) || !below || g_atomic_int_get(&n->opaque))
		return 0;
	int r = sfs_set_opaque(&fs->layers, sfs_node_upper(n));
	if (r == 0)
		g_atomic_int_set(&n->opaque, 1);
	return r;
}

static int prepare_target(struct sfs_fs *fs, struct rename_end *src,
			  struct rename_end *dst, unsigned int flags)
{
	if (!dst->node)
		return 0;
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (flags & RENAME_EXCHANGE)
		return 0;
	if (S_ISDIR(src->node->type) != S_ISDIR(dst->node->type))
		return S_ISDIR(src->node->type) ? -ENOTDIR : -EISDIR;
	if (!S_ISDIR(dst->node->type)) {
		int r = sfs_copyup_shared_link(fs, dst->node);
		if (r == 0)
			r = sfs_shared_name_counts(fs, dst->parent, dst->name,
						   dst->node);
		dst->counts = r > 0;
		return MIN(r, 0);
	}
	/* Its whiteouts go with it when it is replaced (rename_over_dir). */
	int r = sfs_dir_check_empty(fs, dst->node);
	if (r == 0 && sfs_node_upper(dst->node) >= 0)
		r = sfs_count_whiteouts(sfs_node_upper(dst->node), &dst->inside);
	return r;
}

/* src, a directory, replaces dst, a local directory that may still hold
 * whiteouts (rename() wants it empty): exchange the two, then send the
 * old one from src's name to workdir, leaving a whiteout there if
 * something is below.  Undone if the second step fails. */
static int rename_over_dir(struct sfs_fs *fs, struct rename_end *src,
			   struct rename_end *dst)
{
	struct sfs_layers *l = &fs->layers;
	int sfd = sfs_node_upper(src->parent);
	int dfd = sfs_node_upper(dst->parent);
	int t = l->tmp_fd;
	char tmp[32];
	sfs_tmp_name(l, tmp);
	bool wh = src->below && l->mknod_whiteout;
	bool marker = src->below && !l->mknod_whiteout;
	int r = 0;
	if (wh && mknodat(t, tmp, S_IFCHR | 0000, makedev(0, 0)) != 0)
		return -errno;
	if (marker)
		r = sfs_whiteout_create(l, sfd, src->name);
	if (r == 0 && renameat2(sfd, src->name, dfd, dst->name, RENAME_EXCHANGE))
		r = -errno;
	else if (r == 0) {
		if (wh ? renameat2(t, tmp, sfd, src->name, RENAME_EXCHANGE)
		       : renameat2(sfd, src->name, t, tmp, RENAME_NOREPLACE))
			r = -errno;
		if (r < 0 && renameat2(sfd, src->name, dfd, dst->name,
				       RENAME_EXCHANGE) != 0)
			sfs_warn("rename of %s: cannot undo the exchange with "
				 "%s: %s", src->name, dst->name, g_strerror(errno));
		if (r == 0) {
			sfs_rmtree_at(t, tmp); /* else: at the next mount */
			return 0;
		}
	}
	if (wh)
		unlinkat(t, tmp, 0);
	if (marker)
		sfs_wh_file_clear(sfd, src->name);
	return r;
}

/* Move src to dst in the local layer; leave a whiteout at src if needed.
 * *made counts whiteouts created at src, *gone the one replaced at dst
 * (for the local layer's inode count). */
static int rename_local(struct sfs_fs *fs, struct rename_end *src,
			struct rename_end *dst, unsigned int flags, int *made,
			int *gone)
{
	int sfd = sfs_node_upper(src->parent);
	int dfd = sfs_node_upper(dst->parent);
	*made = *gone = 0;
	if (flags & RENAME_EXCHANGE)
		return renameat2(sfd, src->name, dfd, dst->name, flags) ? -errno
									 : 0;
	if (dst->node && S_ISDIR(dst->node->type) &&
	    sfs_node_upper(dst->node) >= 0) {
		int r = rename_over_dir(fs, src, dst);
		*made = r == 0 && src->below;
		*gone = r == 0 ? dst->inside : 0;
		return r;
	}
	int onto_whiteout = dst->node ? 0 : sfs_is_whiteout_at(dfd, dst->name);
	if (onto_whiteout < 0)
		return onto_whiteout;
	if (onto_whiteout && S_ISDIR(src->node->type)) {
		/* rename() cannot put a directory over a char device:
		 * exchange them, then keep or drop the whiteout at src. */
		if (renameat2(sfd, src->name, dfd, dst->name, RENAME_EXCHANGE))
			return -errno;
		if (src->below)
			return 0; /* the whiteout moved to src */
		*gone = 1;
		return unlinkat(sfd, src->name, 0) ? -errno : 0;
	}
	/* A whiteout at dst is a name the user deleted: NOREPLACE must not
	 * see it (do_rename already refused a visible dst). */
	unsigned int keep = onto_whiteout ? 0 : (flags & RENAME_NOREPLACE);
	if (src->below && fs->layers.rename_whiteout) {
		if (renameat2(sfd, src->name, dfd, dst->name,
			      RENAME_WHITEOUT | keep))
			return -errno;
		*made = 1;
		*gone = onto_whiteout;
		return 0;
	}
	if (renameat2(sfd, src->name, dfd, dst->name, keep) != 0)
		return -errno;
	*gone = onto_whiteout;
	if (!src->below)
		return 0;
	int r = sfs_whiteout_create(&fs->layers, sfd, src->name);
	*made = r == 0;
	return r;
}

static int do_rename(struct sfs_fs *fs, struct rename_end *src,
		     struct rename_end *dst, unsigned int flags)
{
	if (fs->read_only)
		return -EROFS;
	if (sfs_is_wh_name(dst->name))
		return -EPERM; /* would read back as a whiteout */
	int r = lookup_rename_end(fs, src);
	if (r == 0 && !src->node)
		r = -ENOENT;
	if (r == 0)
		r = lookup_rename_end(fs, dst);
	if (r == 0 && (flags & RENAME_EXCHANGE) && !dst->node)
		r = -ENOENT;
	if (r == 0 && src->node == dst->node)
		return 0; /* same file: rename(2) does nothing */
	if (r == 0)
		r = prepare_target(fs, src, dst, flags);
	if (r == 0)
		r = sfs_copyup(fs, src->parent, SFS_COPY_META);
	if (r == 0)
		r = sfs_copyup(fs, dst->parent, SFS_COPY_META);
	if (r == 0)
		r = copy_up_moving(fs, src);
	if (r == 0 && (flags & RENAME_EXCHANGE))
		r = copy_up_moving(fs, dst);
	if (r == 0)
		r = opaque_over_shared_dir(fs, src->node, dst->below);
	if (r == 0 && (flags & RENAME_EXCHANGE))
		r = opaque_over_shared_dir(fs, dst->node, src->below);
	struct sfs_last_name last = { .node = NULL };
	if (r == 0 && dst->node && !(flags & RENAME_EXCHANGE))
		sfs_last_name_pin(fs, sfs_node_upper(dst->parent), dst->name,
				  &last);
	/* The index's count of shared names moves with the commit. */
	if (r == 0 && dst->counts)
		r = sfs_index_name_leaving(fs, dst->node);
	/* A whiteout left at the source may be a new inode. */
	int wh = src->below && !(flags & RENAME_EXCHANGE);
	if (r == 0 && wh) {
		r = sfs_usage_reserve(fs, 0, 1);
		if (r < 0 && dst->counts)
			sfs_index_name_left(fs, dst->node, false);
	}
	if (r == 0) {
		int made, gone;
		r = rename_local(fs, src, dst, flags, &made, &gone);
		sfs_count_add(&fs->counters.whiteouts, (uint64_t)made);
		sfs_usage_add(fs, 0, made - gone - wh);
		if (dst->counts)
			sfs_index_name_left(fs, dst->node, r == 0);
	}
	sfs_last_name_retire(fs, &last, r == 0);
	if (r < 0)
		return r;
	sfs_assert_ns_exclusive(fs);
	sfs_node_set_name(fs->table, src->node, dst->parent, dst->name);
	if (flags & RENAME_EXCHANGE)
		sfs_node_set_name(fs->table, dst->node, src->parent, src->name);
	return 0;
}

void sfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		   fuse_ino_t newparent, const char *newname,
		   unsigned int flags)
{
	struct sfs_fs *fs = sfs_req_fs(req);
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct rename_end src = { sfs_req_node(req, parent), name, NULL, 0, 0, 0 };
	struct rename_end dst = { sfs_req_node(req, newparent), newname, NULL, 0, 0, 0 };
	sfs_ns_lock(fs);
	int r = do_rename(fs, &src, &dst, flags);
	sfs_ns_unlock(fs);
	if (src.node)
		sfs_node_forget(fs->table, src.node, 1);
	if (dst.node)
		sfs_node_forget(fs->table, dst.node, 1);
	fuse_reply_err(req, -r);
}
