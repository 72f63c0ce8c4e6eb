/* layers.h - the directories scratchfs stacks, opened once at mount. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

struct sfs_config;

/* Layer index 0 is the local (upper) layer; 1..n are the shared layers,
 * 1 on top.  The index goes into the top bits of st_ino (see node.h). */
struct sfs_layer {
	int fd;     /* O_PATH | O_DIRECTORY on the layer root */
	char *path;
	dev_t dev;
	int index;
	int mount_fd;  /* O_RDONLY on the root: open_by_handle_at() wants one */
	bool handles;  /* objects can be kept as file handles */
};

/* Set by scratchfs --fsck --repair on a metadata-only copy whose shared
 * data is gone (fsck.h): reads of it fail with EIO. */
#define SFS_LOST_XATTR "scratchfs.lost"

/* Names of the private xattrs: trusted.* as root, user.* otherwise
 * (kernel overlayfs "userxattr" mode). */
struct sfs_xattr_names {
	const char *opaque;     /* overlay.opaque = "y" */
	const char *metacopy;   /* overlay.metacopy: data still below */
	const char *lost;       /* SFS_LOST_XATTR */
	const char *ino;        /* scratchfs.ino: st_ino kept across copy-up */
	const char *lowerdata;  /* scratchfs.lowerdata: "LAYER:/path" of data */
	const char *nlink;      /* scratchfs.nlink on index files, index.h */
	const char *redirect;   /* overlay.redirect: where the shared twin is */
};

struct sfs_layers {
	struct sfs_layer upper;
	struct sfs_layer *lower; /* nlower entries, lower[0] on top */
	int nlower;
	int work_fd;   /* workdir root */
	int tmp_fd;    /* workdir/work: copy-ups are built here */
	int index_fd;  /* workdir/index: shared-layer hardlinks, see index.h */
	int lock_fd;   /* workdir, flock'ed shared while mounted (fsck.h) */
	struct sfs_xattr_names xa;
	bool mknod_whiteout;  /* char 0/0 whiteouts can be created */
	bool rename_whiteout; /* renameat2(RENAME_WHITEOUT) works on upper */
	int can_clone;        /* -1 unknown, 0 refused once, 1 works */
	guint64 tmp_counter;  /* atomic: unique temp names in workdir/work */
};

bool sfs_layers_open(const struct sfs_config *cfg, struct sfs_layers *l,
		     GError **err);
void sfs_layers_close(struct sfs_layers *l);

/* Call fn for each entry but "." and ".." of the directory open as fd
 * (which is consumed), until fn returns non-zero; returns that value. */
int sfs_foreach_entry(int fd, int (*fn)(int dirfd, const char *name, void *arg),
		      void *arg);

/* Remove everything below dirfd/name (used for workdir cleanup). */
int sfs_rmtree_at(int dirfd, const char *name);

/* Unique temporary name in workdir/work. */
void sfs_tmp_name(struct sfs_layers *l, char buf[32]);

/* Layer by index (0 = upper). */
static inline const struct sfs_layer *sfs_layer_get(const struct sfs_layers *l,
						    int index)
{
	return index == 0 ? &l->upper : &l->lower[index - 1];
}
