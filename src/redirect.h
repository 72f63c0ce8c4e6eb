/* redirect.h - where a local object's shared counterpart lives.
 *
 * Usually at the same path one layer down.  Two records say otherwise:
 * scratchfs.lowerdata ("LAYER:/path", written by scratchfs on a metadata
 * copy) and overlay.redirect (written by kernel overlayfs for renamed
 * directories and metacopy files: "/abs/path" from the layer roots, or a
 * bare name in the parent).  scratchfs reads both and writes both, so
 * local layers move between scratchfs and `mount -t overlay`.
 */
#pragma once

#include "fs.h"

/* The data object of the metacopy file pfd/name (parent is its parent
 * node).  *rel receives the path inside layer o->layer. */
int sfs_find_lowerdata(struct sfs_fs *fs, struct sfs_node *parent, int pfd,
		       const char *name, struct sfs_obj *o, char **rel);

/* Shared directories of a redirected local directory pfd/name.  1 if a
 * redirect was followed, 0 if there is none, -errno. */
int sfs_redirect_dirs(struct sfs_fs *fs, struct sfs_node *parent, int pfd,
		      const char *name, GArray **dirs);
