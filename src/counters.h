/* counters.h - what a mount has done, for `scratchfs --status`.
 *
 * One struct per mount, inside struct sfs_fs.  Every field is a 64-bit
 * counter changed with relaxed atomic adds: the request path takes no
 * lock for them, and a reader sees each value whole (not a consistent
 * snapshot of all of them, which nobody needs).
 *
 * The daemon renders the counters as "key value" lines (sfs_counters_render);
 * status.c hands that text out, and `scratchfs --status` (status_cmd.c)
 * turns it into tables, JSON or Prometheus text.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

/* Requests, by the handler that served them. */
#define SFS_OPCODES(X)                                                         \
	X(LOOKUP, lookup) X(FORGET, forget) X(GETATTR, getattr)                \
	X(SETATTR, setattr) X(READLINK, readlink) X(ACCESS, access)            \
	X(MKNOD, mknod) X(MKDIR, mkdir) X(UNLINK, unlink) X(RMDIR, rmdir)      \
	X(SYMLINK, symlink) X(RENAME, rename) X(LINK, link) X(OPEN, open)      \
	X(READ, read) X(WRITE, write) X(RELEASE, release) X(FSYNC, fsync)      \
	X(OPENDIR, opendir) X(READDIR, readdir) X(READDIRPLUS, readdirplus)    \
	X(RELEASEDIR, releasedir) X(FSYNCDIR, fsyncdir) X(STATFS, statfs)      \
	X(SETXATTR, setxattr) X(GETXATTR, getxattr) X(LISTXATTR, listxattr)    \
	X(REMOVEXATTR, removexattr) X(CREATE, create)                          \
	X(FALLOCATE, fallocate) X(LSEEK, lseek)                                \
	X(COPY_FILE_RANGE, copy_file_range)

enum sfs_opcode {
#define SFS_OPCODE_ENUM(up, low) SFS_OPC_##up,
	SFS_OPCODES(SFS_OPCODE_ENUM)
#undef SFS_OPCODE_ENUM
	SFS_OPC_COUNT
};

/* errno values above this are counted together in the last slot. */
#define SFS_ERRNO_SLOTS 136

struct sfs_counters {
	gint64 start_us;          /* g_get_monotonic_time() at mount */
	uint64_t ops[SFS_OPC_COUNT];
	uint64_t errors[SFS_ERRNO_SLOTS];
	uint64_t links;           /* link() that succeeded */
	uint64_t copyups_meta;    /* copy-ups that copied no file data */
	uint64_t copyups_data;    /* copy-ups (or fills) of file data */
	uint64_t copyup_bytes;    /* file data copied up */
	uint64_t whiteouts;       /* whiteouts created */
	uint64_t fd_reclaims;     /* nodes the kernel was asked to forget */
	/* The reader's spins (kernel_io.c): caught the next request, or not. */
	uint64_t spins_caught;
	uint64_t spins_missed;
	/* The local layer's use (usage.c): allocated bytes, inodes. */
	int64_t upper_bytes;
	int64_t upper_inodes;
};

static inline void sfs_count_add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t sfs_count_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void sfs_counters_init(struct sfs_counters *c);

static inline void sfs_count_op(struct sfs_counters *c, enum sfs_opcode op)
{
	sfs_count_add(&c->ops[op], 1);
}

static inline void sfs_count_error(struct sfs_counters *c, int err)
{
	sfs_count_add(&c->errors[MIN((unsigned)err, SFS_ERRNO_SLOTS - 1u)], 1);
}

/* Why this thread is working: the syscall behind the current request
 * ("link", "chmod", "open for write"), set by ops_table.c and named in
 * the loglevel=info line of a copy-up. */
void sfs_set_request_reason(const char *why);
const char *sfs_request_reason(void);

/* Name of an opcode ("lookup"). */
const char *sfs_opcode_name(enum sfs_opcode op);

/* What the daemon knows besides the counters, for the report. */
struct sfs_status_info {
	const char *mountpoint;
	const char *upperdir;
	uint64_t upper_limit;   /* bytes, 0 = none */
	uint64_t inode_limit;   /* 0 = none */
};

/* "key value" lines (see status_cmd.c for the keys' meaning). */
void sfs_counters_render(const struct sfs_counters *c,
			 const struct sfs_status_info *info, GString *out);

/* The one line logged at unmount. */
char *sfs_counters_summary(const struct sfs_counters *c);
