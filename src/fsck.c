/* fsck.c - offline check of a local layer (see fsck.h). */
#include "config.h"

#include "fsck.h"

int sfs_fsck_command(const struct sfs_config *cfg)
{
	(void)cfg;
	return SFS_FSCK_PROBLEMS;
}
