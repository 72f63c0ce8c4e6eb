/* status_cmd.h - `scratchfs --status MOUNTPOINT`: read a running mount's
 * counters (status.h) and print them for people or programs. */
#pragma once

#include "options.h"

/* Exit status: 0, or SFS_EXIT_MOUNTPOINT when MOUNTPOINT is not the root
 * of a running scratchfs mount. */
int sfs_status_command(const struct sfs_config *cfg, FILE *out);
