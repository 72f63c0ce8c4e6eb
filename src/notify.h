/* notify.h - tell the kernel to drop a node's cached pages (a file's
 * data, a directory's listing).
 *
 * Used when scratchfs learns that data changed behind the kernel's back
 * in a way the attributes do not show: a shared file under a metadata-only
 * copy was rewritten (the local mtime stays), or, without OPEN (no_open),
 * a shared file was rewritten with its mtime put back (attr.c).  The notification is sent
 * from a thread of its own, never from a request handler: the kernel may
 * wait on a page that a queued READ of the same file holds.
 */
#pragma once

#include <fuse_lowlevel.h>

struct sfs_notifier;

struct sfs_notifier *sfs_notifier_start(struct fuse_session *se);
void sfs_notifier_inval(struct sfs_notifier *nt, fuse_ino_t nodeid);
/* The same `seconds` from now (a listing the kernel keeps, listing.h). */
void sfs_notifier_inval_after(struct sfs_notifier *nt, fuse_ino_t nodeid,
			      double seconds);
void sfs_notifier_stop(struct sfs_notifier *nt);
