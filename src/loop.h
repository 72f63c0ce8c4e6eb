/* loop.h - the request loop.
 *
 * One reader thread (the caller) takes every request off /dev/fuse (it
 * may spin briefly before sleeping, -o busy_poll, kernel_io.c) and answers the quick ones
 * itself, so a program that makes one call after another finds the
 * reader awake and pays no wake-up on the daemon's side.  Requests that
 * may block on data (READ, WRITE, fsync, a truncating SETATTR, an OPEN
 * for writing, which may copy a file up) go to `workers` pool threads so
 * that they never hold up the others.  workers == 0: the reader answers
 * everything (-s).
 */
#pragma once

#include <fuse_lowlevel.h>

/* 0 once the session ended (unmount or signal), -errno on failure. */
int sfs_loop_run(struct fuse_session *se, unsigned workers);
