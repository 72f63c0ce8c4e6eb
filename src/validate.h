/* validate.h - directory and mount point checks.  sfs_config_validate()
 * itself is public and declared in options.h; this header holds what the
 * rest of the option code shares with it.
 */
#pragma once

/* The mount point with its parent directory resolved (realpath), without
 * touching the mount point itself: it may be a hung or stale FUSE mount.
 * A symlink as mount point is followed, as mount(2) would.  NULL when
 * the parent does not resolve; the caller frees the result. */
char *sfs_resolve_mountpoint(const char *mp);
