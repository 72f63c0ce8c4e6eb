/* objref.h - references to real objects: O_PATH fds or file handles.
 *
 * A node keeps one reference per layer object (see struct sfs_obj in
 * node.h).  Code that needs an fd asks for one with sfs_obj_get() and lets
 * SFS_AUTOFD close it if it was opened from a handle just for this call.
 */
#pragma once

#include "layers.h"
#include "node.h"

#include <stdbool.h>

typedef struct {
	int fd;      /* O_PATH fd, or -errno */
	bool owned;  /* opened for this call: close on release */
} SfsFd;

static inline void sfs_fd_release(SfsFd *f)
{
	if (f->owned && f->fd >= 0)
		close(f->fd);
	f->owned = false;
}

#define SFS_AUTOFD __attribute__((cleanup(sfs_fd_release))) SfsFd

/* Reference dirfd/name (not following a final symlink).  Directories,
 * and objects on layers without usable handles, keep an O_PATH fd. */
int sfs_obj_at(const struct sfs_layers *l, int dirfd, const char *name,
	       int layer, bool is_dir, struct sfs_obj *o);

/* Reference the object behind an O_PATH fd; takes ownership of fd. */
int sfs_obj_from_fd(const struct sfs_layers *l, int fd, int layer,
		    bool is_dir, struct sfs_obj *o);

SfsFd sfs_obj_get(const struct sfs_layers *l, const struct sfs_obj *o);

/* A new fd opened with flags for I/O; the caller closes it. -errno. */
int sfs_obj_open(const struct sfs_layers *l, const struct sfs_obj *o,
		 int flags);

/* Give the object another name dirfd/name (link(2)). -errno. */
int sfs_link_obj(const struct sfs_layers *l, const struct sfs_obj *o,
		 int dirfd, const char *name);
