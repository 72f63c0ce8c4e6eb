/* status.h - the status channel: virtual xattrs on the mount's root.
 *
 *   user.scratchfs.status    read-only: the counters as "key value" lines
 *                            (counters.c); `scratchfs --status` reads it
 *   user.scratchfs.loglevel  the daemon's log level; only root or the
 *                            mounting user may set it
 *
 * Why an xattr and not a socket: it needs no name in the merged tree, no
 * runtime directory, no listener thread and nothing to clean up after a
 * kill -9; it reaches exactly those who can reach the mount (also from
 * another mount namespace, e.g. a container the mount was passed into),
 * with the kernel's permission check on the root directory; and a reader
 * needs nothing but getxattr(2).  The names are never listed, so copies
 * of the root with xattrs (cp -a, rsync -X) do not pick them up.
 */
#pragma once

#include "fs.h"

#define SFS_STATUS_XATTR "user.scratchfs.status"
#define SFS_LOGLEVEL_XATTR "user.scratchfs.loglevel"

/* Is ino/name one of the virtual attributes? */
bool sfs_status_is_virtual(fuse_ino_t ino, const char *name);

/* Reply to GETXATTR / SETXATTR / REMOVEXATTR of a virtual attribute. */
void sfs_status_getxattr(fuse_req_t req, const char *name, size_t size);
void sfs_status_setxattr(fuse_req_t req, const char *name, const char *value,
			 size_t size);
