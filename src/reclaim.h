/* reclaim.h - give fds back when the daemon nears its fd limit.
 *
 * Every directory node holds an O_PATH fd (the dirfd of the *at() calls
 * below it), and on layers without file handles every node does.  The
 * kernel keeps a node while its dentry is cached, which without memory
 * pressure is forever: eight 20,000-file venvs hold more directories than
 * a 20,000-fd limit.  When a node's fd number crosses the high-water mark
 * (half the limit), a thread asks the kernel to prune the least recently
 * used nodes (FUSE_NOTIFY_PRUNE): it drops those of their dentries that
 * are not in use and sends FORGET, which closes the fds.  Nothing is lost:
 * the next access looks the name up again.  Kernels without the
 * notification (FUSE protocol < 7.45) keep every node, as before, and an
 * operation that finds no free fd fails with EMFILE.
 */
#pragma once

#include "node.h"

#include <fuse_lowlevel.h>
#include <stdbool.h>

struct sfs_reclaim;

/* fd_limit: the daemon's RLIMIT_NOFILE; probe_fd: any fd the daemon keeps
 * open for its lifetime; pruned: counts the nodes given back (counters.h). */
struct sfs_reclaim *sfs_reclaim_start(struct fuse_session *se,
				      struct sfs_table *t, int probe_fd,
				      long fd_limit, uint64_t *pruned);

/* n is being handed to the kernel: wake the thread if n's fds sit above
 * the high-water mark.  Cheap; rc may be NULL. */
void sfs_reclaim_note(struct sfs_reclaim *rc, const struct sfs_node *n);

/* Something failed with EMFILE or ENFILE: give fds back now. */
void sfs_reclaim_kick(struct sfs_reclaim *rc);

/* r is a new node's failure.  If fds ran out (-EMFILE, -ENFILE), start
 * a pass, give it a moment and return true: the caller tries again a few
 * times.  (With one thread no FORGET arrives meanwhile; the wait is
 * short.) */
bool sfs_reclaim_wait(struct sfs_reclaim *rc, int r);

/* r = call, tried up to five times while sfs_reclaim_wait() says fds may
 * come back, or while `again` (an expression of r) holds. */
#define SFS_RECLAIM_RETRY(rc, r, call, again)                                  \
	for (int tries_ = 0; tries_ < 5; tries_++)                             \
		if ((r) = (call), !((again) || sfs_reclaim_wait((rc), (r))))   \
			break

/* A pass is wanted or running: optional new nodes (readdirplus) wait. */
bool sfs_reclaim_busy(struct sfs_reclaim *rc);

void sfs_reclaim_stop(struct sfs_reclaim *rc);
