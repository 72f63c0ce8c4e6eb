/* kernel_io.h - the FUSE protocol below libfuse 3.14.
 *
 * libfuse 3.14 speaks protocol 7.31-era INIT and knows nothing of
 * passthrough.  Through its public fuse_session_custom_io() every request
 * passes our read hook and every reply our writev hook, where this module:
 *  - reads /dev/fuse non-blocking and spins up to `spin_us` before it
 *    sleeps in poll() (only the one reader thread of loop.c calls it);
 *  - records what the kernel offers in its INIT request (the probe);
 *  - adds to the INIT reply what 3.14 leaves out: FUSE_PARALLEL_DIROPS,
 *    and FUSE_INIT_EXT + FUSE_PASSTHROUGH with max_stack_depth;
 *  - fills backing_id and FOPEN_PASSTHROUGH into an OPEN/CREATE reply
 *    (sfs_kio_reply_passthrough());
 *  - opens and closes backing files (FUSE_DEV_IOC_BACKING_OPEN/CLOSE).
 */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct sfs_kio_config {
	unsigned spin_us;  /* busy-poll before sleeping; 0: sleep at once */
	bool passthrough;  /* ask for FUSE passthrough if the kernel has it */
	bool debug;        /* log the INIT exchange */
	uint64_t *spins_caught, *spins_missed; /* counted here if not NULL */
};

/* Install the hooks on the mounted session's fd (made O_NONBLOCK) and
 * block SIGINT/SIGTERM/SIGHUP in this thread and every thread it starts
 * from now on (see kio_read); false with err set. */
bool sfs_kio_attach(struct fuse_session *se, const struct sfs_kio_config *c,
		    GError **err);

/* What the kernel offered in INIT (valid once INIT was answered). */
bool sfs_kio_kernel_offers(uint64_t flag);
/* FUSE_PASSTHROUGH was granted in the INIT reply. */
bool sfs_kio_passthrough(void);

/* The opcode of a request in a receive buffer (0 if too short). */
uint32_t sfs_kio_opcode(const void *mem, size_t size);
/* The open flags of an OPEN request (0 for any other). */
uint32_t sfs_kio_open_flags(const void *mem, size_t size);
/* The inodes a request names: the header's, and a LINK's source (0 for
 * none, or a request too short). */
uint64_t sfs_kio_nodeid(const void *mem, size_t size);
uint64_t sfs_kio_link_source(const void *mem, size_t size);

/* The reader handed the request it read last to a worker: its reply, and
 * so the client's next request, waits for that worker; the reader sleeps
 * at once on its next read instead of spinning. */
void sfs_kio_handed_over(void);

/* A backing id for the open file fd (> 0), or -errno. */
int sfs_kio_backing_open(int fd);
void sfs_kio_backing_close(int id);

/* Make the calling thread's next OPEN or CREATE reply a passthrough reply
 * to backing `id`; the reply must follow in the same thread. */
void sfs_kio_reply_passthrough(int id);
