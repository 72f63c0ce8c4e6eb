/* fsck.h - `scratchfs --fsck [--repair]`: check an unmounted local layer.
 *
 * Exit status: 0 clean, 1 problems found and all repaired, 4 problems
 * left (or the check itself failed: unreadable layer, mounted layer). */
#pragma once

#include "options.h"

enum sfs_fsck_exit {
	SFS_FSCK_CLEAN = 0,
	SFS_FSCK_REPAIRED = 1,
	SFS_FSCK_PROBLEMS = 4,
};

int sfs_fsck_command(const struct sfs_config *cfg);
