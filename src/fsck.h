/* fsck.h - `scratchfs --fsck [--repair]`: check an unmounted local layer.
 *
 * Findings, one line each on stdout:
 *   problem: WHERE: WHAT          left as it is (no --repair, or no safe fix)
 *   repaired: WHERE: WHAT; DONE   fixed by --repair
 *   note: WHERE: WHAT             worth knowing, not wrong
 * Exit status: 0 clean (notes only), 1 every problem repaired, 4 problems
 * left, 8 the check could not run (layer mounted, unreadable).
 *
 * A running scratchfs holds a shared flock on workdir (layers.c); the check
 * takes it exclusively, so neither runs while the other does.
 */
#pragma once

#include "options.h"

enum sfs_fsck_exit {
	SFS_FSCK_CLEAN = 0,
	SFS_FSCK_REPAIRED = 1,
	SFS_FSCK_PROBLEMS = 4,
	SFS_FSCK_FAILED = 8,
};

int sfs_fsck_command(const struct sfs_config *cfg);
