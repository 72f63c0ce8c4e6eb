/* sys.h - the few system-call wrappers every layer of scratchfs shares.
 *
 * scratchfs keeps objects as O_PATH fds or file handles.  An O_PATH fd can
 * do little by itself: I/O, xattrs, chmod and link(2) of it go through its
 * /proc/self/fd/N name, which the kernel resolves without a path walk of
 * the layer.  This is the one place that builds such names.  Nothing here
 * knows about layers or nodes.
 */
#pragma once

#include <fcntl.h>

/* Room for "/proc/self/fd/" and any int. */
#define SFS_FD_PATH_LEN 32

/* buf := "/proc/self/fd/FD"; returns buf. */
const char *sfs_fd_path(char buf[SFS_FD_PATH_LEN], int fd);

/* "/proc/self/fd/DIRFD/NAME", allocated (g_free it). */
char *sfs_fd_path_at(int dirfd, const char *name);

/* Open an O_PATH fd for real I/O, with flags (O_NOATIME tried for reads
 * of shared files and dropped where not permitted). -errno on failure. */
int sfs_reopen(int opath_fd, int flags);

/* The file handle of dirfd/name (name_to_handle_at(2) flags), allocated
 * (g_free it); NULL where the filesystem has none. */
struct file_handle *sfs_handle_at(int dirfd, const char *name, int flags);
