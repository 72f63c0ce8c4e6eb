/* health.h - is a shared layer answering?  One log line when a shared
 * layer starts failing (a network volume that went away or stopped
 * answering) and one when it answers again (5 s after its last failure),
 * however many requests fail in between: the errors themselves go to
 * the callers.
 *
 * The state is per process (one mount per process), set up with the
 * layers; notes about unknown layers (0, the local one) are ignored. */
#pragma once

#include "layers.h"

void sfs_health_init(const struct sfs_layers *l);
void sfs_health_free(void);

/* The result of an operation on shared layer `layer` (1..n): 0 or more,
 * or -errno.  Errors that are answers (ENOENT, EACCES...) count as the
 * layer answering. */
void sfs_health_note(int layer, int r);
