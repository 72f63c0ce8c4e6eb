/* creds.h - act as the calling user while creating objects.
 *
 * The daemon usually runs as root for everyone.  New objects must belong to
 * the caller, so around each create the worker thread switches its fsuid and
 * fsgid (per-thread on Linux).  SECBIT_NO_SETUID_FIXUP keeps the thread's
 * capabilities across the switch: the kernel has already checked permissions
 * (default_permissions), the switch only decides the owner, and the group
 * and setgid bit still come from a setgid parent as on any filesystem.
 */
#pragma once

#include <fuse_lowlevel.h>
#include <stdbool.h>

/* Call once, before any worker thread starts. Returns false if running
 * unprivileged (creds switching is then a no-op). */
bool sfs_creds_init(void);

struct sfs_creds {
	bool switched;
};

void sfs_creds_enter(fuse_req_t req, struct sfs_creds *c);
void sfs_creds_leave(struct sfs_creds *c);
