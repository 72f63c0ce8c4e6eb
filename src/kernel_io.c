/* kernel_io.c - the FUSE protocol below libfuse 3.14 (see kernel_io.h).
 *
 * Struct layouts come from the system's <linux/fuse.h> where it has them;
 * what it lacks (Debian 12 ships protocol 7.38, passthrough is 7.40) is
 * defined here after the kernel's header and checked against the parts
 * the system header does have.
 */
#include "config.h"

#include "kernel_io.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- Protocol 7.40+ parts missing from older <linux/fuse.h>. ---- */
#ifndef FUSE_PASSTHROUGH
#define FUSE_PASSTHROUGH (1ULL << 37)
#endif
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif
#ifndef FOPEN_PASSTHROUGH
#define FOPEN_PASSTHROUGH (1 << 7)
#endif

struct sfs_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define SFS_DEV_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct sfs_backing_map)
#define SFS_DEV_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

/* fuse_open_out as of 7.40: the old padding became backing_id. */
struct sfs_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};
_Static_assert(sizeof(struct sfs_open_out) == sizeof(struct fuse_open_out),
	       "fuse_open_out layout");
_Static_assert(offsetof(struct sfs_open_out, open_flags) ==
		       offsetof(struct fuse_open_out, open_flags),
	       "fuse_open_out layout");

/* fuse_init_out as of 7.40: unused[0] became max_stack_depth. */
struct sfs_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
	uint16_t request_timeout;
	uint16_t unused[11];
};
_Static_assert(sizeof(struct sfs_init_out) == sizeof(struct fuse_init_out),
	       "fuse_init_out layout");
_Static_assert(offsetof(struct sfs_init_out, flags2) ==
		       offsetof(struct fuse_init_out, flags2),
	       "fuse_init_out layout");

/* The INIT request's flags, from the start of fuse_init_in. */
struct sfs_init_in {
	uint32_t major, minor, max_readahead, flags;
	uint32_t flags2;
};
_Static_assert(offsetof(struct sfs_init_in, flags2) ==
		       offsetof(struct fuse_init_in, flags2),
	       "fuse_init_in layout");

/* ---- State: one session per process. ---- */
static struct {
	int fd;
	struct sfs_kio_config cfg;
	uint64_t init_unique;    /* the INIT request, until it is answered */
	uint64_t offered;        /* INIT request flags | flags2 << 32 */
	bool passthrough;        /* granted in the INIT reply */
	struct fuse_session *se;
	sigset_t wait_mask;      /* while asleep: the signals that end us */
	int spin_credit;         /* the reader's: see spin_now() */
	unsigned spin_probe;
	bool handed_over;        /* the reader's: see sfs_kio_handed_over() */
} kio = { .fd = -1 };

static __thread int pending_backing; /* sfs_kio_reply_passthrough() */

bool sfs_kio_kernel_offers(uint64_t flag)
{
	return (__atomic_load_n(&kio.offered, __ATOMIC_ACQUIRE) & flag) == flag;
}

bool sfs_kio_passthrough(void)
{
	return __atomic_load_n(&kio.passthrough, __ATOMIC_ACQUIRE);
}

/* The header of a request in a receive buffer, NULL if too short. */
static const struct fuse_in_header *request_header(const void *mem, size_t size)
{
	return size < sizeof(struct fuse_in_header) ? NULL : mem;
}

/* The body of a request of this opcode with at least len bytes, NULL for
 * another opcode or a buffer too short. */
static const void *request_body(const void *mem, size_t size, uint32_t opcode,
				size_t len)
{
	const struct fuse_in_header *h = request_header(mem, size);
	if (!h || h->opcode != opcode || size < sizeof(*h) + len)
		return NULL;
	return h + 1;
}

uint32_t sfs_kio_opcode(const void *mem, size_t size)
{
	const struct fuse_in_header *h = request_header(mem, size);
	return h ? h->opcode : 0;
}

uint64_t sfs_kio_nodeid(const void *mem, size_t size)
{
	const struct fuse_in_header *h = request_header(mem, size);
	return h ? h->nodeid : 0;
}

uint32_t sfs_kio_open_flags(const void *mem, size_t size)
{
	const struct fuse_open_in *in =
		request_body(mem, size, FUSE_OPEN, sizeof(*in));
	return in ? in->flags : 0;
}

uint64_t sfs_kio_link_source(const void *mem, size_t size)
{
	const struct fuse_link_in *in =
		request_body(mem, size, FUSE_LINK, sizeof(*in));
	return in ? in->oldnodeid : 0;
}

/* ---- Reading: spin, then sleep. ---- */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_request(const void *buf, ssize_t n)
{
	if (sfs_kio_opcode(buf, (size_t)n) != FUSE_INIT)
		return;
	const struct fuse_in_header *h = buf;
	const struct sfs_init_in *in = (const void *)(h + 1);
	if ((size_t)n < sizeof(*h) + offsetof(struct sfs_init_in, flags2))
		return;
	uint64_t offered = in->flags;
	if ((offered & FUSE_INIT_EXT) &&
	    (size_t)n >= sizeof(*h) + sizeof(struct sfs_init_in))
		offered |= (uint64_t)in->flags2 << 32;
	kio.init_unique = h->unique;
	__atomic_store_n(&kio.offered, offered, __ATOMIC_RELEASE);
}

/* Spinning pays only while each reply is followed quickly by the next
 * request (cp -al, rm -rf, a stat walk: one client calling in a loop).
 * When requests come slowly, or the client is itself waiting for a CPU on
 * a busy machine, a spin only burns the CPU the client needs.  So spinning
 * runs on credit: a spin that catches a request earns one, a spin that
 * times out costs two (it pays while at least two in three catch one),
 * and at no credit the reader sleeps at once, but for a probe spin every
 * SPIN_PROBE_EVERY requests that finds out whether spinning pays again.
 * The wake-up a sleeping reader needs cannot tell: on a virtual machine
 * it alone can take longer than spin_us. */
enum { SPIN_CREDIT_MAX = 16, SPIN_MISS_COST = 2, SPIN_PROBE_EVERY = 32 };

void sfs_kio_handed_over(void)
{
	kio.handed_over = true;
}

static bool spin_now(void)
{
	bool handed_over = kio.handed_over;
	kio.handed_over = false;
	if (!kio.cfg.spin_us || handed_over)
		return false;
	return kio.spin_credit > 0 || ++kio.spin_probe % SPIN_PROBE_EVERY == 0;
}

static void spin_result(bool caught)
{
	uint64_t *count = caught ? kio.cfg.spins_caught : kio.cfg.spins_missed;
	if (count)
		__atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
	if (caught)
		kio.spin_credit = MIN(kio.spin_credit + 1, SPIN_CREDIT_MAX);
	else
		kio.spin_credit = MAX(kio.spin_credit - SPIN_MISS_COST, 0);
}

/* Only the reader thread of loop.c calls this.  A request that arrives
 * within spin_us of the last one is picked up without a sleep and a
 * wake-up (see spin_now); an idle mount sleeps in ppoll().  SIGINT,
 * SIGTERM and SIGHUP (libfuse's handlers end the session) are blocked in
 * every thread and let in only by that ppoll(), so one that comes while
 * the reader spins or works waits for the ppoll() and ends it at once. */
static ssize_t kio_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	bool spin = spin_now();
	uint64_t deadline = 0;
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0) {
			if (deadline)
				spin_result(true);
			note_request(buf, n);
			return n;
		}
		if (errno != EAGAIN)
			return -1;
		if (spin) {
			if (!deadline)
				deadline = now_ns() + kio.cfg.spin_us * 1000ull;
			if (now_ns() < deadline)
				continue;
			spin_result(false);
			spin = false;
			deadline = 0;
		}
		if (fuse_session_exited(kio.se)) {
			errno = EINTR;
			return -1;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (ppoll(&p, 1, NULL, &kio.wait_mask) < 0)
			return -1; /* EINTR: the loop looks at fuse_session_exited */
	}
}

/* ---- Writing: patch the replies 3.14 cannot build. ---- */
static void patch_init(struct iovec *iov, int count)
{
	if (count < 2 || iov[1].iov_len < offsetof(struct sfs_init_out, flags2))
		return;
	struct sfs_init_out *out = iov[1].iov_base;
	uint64_t flags = out->flags;
	if (iov[1].iov_len >= sizeof(*out) && (out->flags & FUSE_INIT_EXT))
		flags |= (uint64_t)out->flags2 << 32;
	/* 3.14 sets the want bit but never sends it: without it the kernel
	 * serialises LOOKUP and READDIR per directory. */
	if (sfs_kio_kernel_offers(FUSE_PARALLEL_DIROPS))
		flags |= FUSE_PARALLEL_DIROPS;
	bool pt = kio.cfg.passthrough && iov[1].iov_len >= sizeof(*out) &&
		  sfs_kio_kernel_offers(FUSE_INIT_EXT | FUSE_PASSTHROUGH) &&
		  !(flags & FUSE_WRITEBACK_CACHE);
	if (pt) {
		flags |= FUSE_INIT_EXT | FUSE_PASSTHROUGH;
		/* Backing files live on ordinary filesystems (depth 0). */
		out->max_stack_depth = 1;
	}
	out->flags = (uint32_t)flags;
	if (iov[1].iov_len >= sizeof(*out))
		out->flags2 = (uint32_t)(flags >> 32);
	__atomic_store_n(&kio.passthrough, pt, __ATOMIC_RELEASE);
	if (kio.cfg.debug)
		sfs_debug("INIT: kernel offers 0x%016" G_GINT64_MODIFIER
			      "x, reply flags 0x%016" G_GINT64_MODIFIER
			      "x (parallel_dirops %d, passthrough %d)",
			      (guint64)kio.offered, (guint64)flags,
			      !!(flags & FUSE_PARALLEL_DIROPS), pt);
}

static void patch_open(struct iovec *iov, int count, int id)
{
	if (count < 2 || iov[count - 1].iov_len < sizeof(struct sfs_open_out))
		return;
	/* OPEN's reply is fuse_open_out, CREATE's fuse_entry_out followed by
	 * fuse_open_out: either way it ends the reply. */
	struct iovec *last = &iov[count - 1];
	struct sfs_open_out *o = (void *)((char *)last->iov_base +
					  last->iov_len - sizeof(*o));
	o->open_flags |= FOPEN_PASSTHROUGH;
	o->backing_id = id;
}

static ssize_t kio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	const struct fuse_out_header *h = iov[0].iov_base;
	if (iov[0].iov_len >= sizeof(*h) && h->error == 0) {
		if (G_UNLIKELY(h->unique && h->unique == kio.init_unique)) {
			patch_init(iov, count);
			kio.init_unique = 0;
		} else if (pending_backing > 0) {
			patch_open(iov, count, pending_backing);
		}
	}
	pending_backing = 0;
	return writev(fd, iov, count);
}

static ssize_t kio_splice_send(int fdin, off_t *offin, int fdout,
			       off_t *offout, size_t len, unsigned int flags,
			       void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

void sfs_kio_reply_passthrough(int id)
{
	pending_backing = id;
}

/* ---- Passthrough backing files. ---- */
static bool has_cap_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	return d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
	       CAP_TO_MASK(CAP_SYS_ADMIN);
}

int sfs_kio_backing_open(int fd)
{
	struct sfs_backing_map map = { .fd = fd };
	int id = ioctl(kio.fd, SFS_DEV_IOC_BACKING_OPEN, &map);
	return id < 0 ? -errno : (id == 0 ? -EIO : id);
}

void sfs_kio_backing_close(int id)
{
	uint32_t u = (uint32_t)id;
	if (ioctl(kio.fd, SFS_DEV_IOC_BACKING_CLOSE, &u) != 0)
		sfs_debug("backing close %d: %s", id, g_strerror(errno));
}

bool sfs_kio_attach(struct fuse_session *se, const struct sfs_kio_config *c,
		    GError **err)
{
	int fd = fuse_session_fd(se);
	kio.fd = fd;
	kio.cfg = *c;
	kio.spin_credit = SPIN_CREDIT_MAX;
	/* The kernel refuses backing files from a daemon without
	 * CAP_SYS_ADMIN: do not ask for what cannot be used. */
	if (kio.cfg.passthrough && !has_cap_sys_admin())
		kio.cfg.passthrough = false;
	kio.se = se;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "/dev/fuse: %s", g_strerror(errno));
		return false;
	}
	static const struct fuse_custom_io io = {
		.read = kio_read,
		.writev = kio_writev,
		.splice_send = kio_splice_send,
	};
	sigset_t ending;
	sigemptyset(&ending);
	sigaddset(&ending, SIGINT);
	sigaddset(&ending, SIGTERM);
	sigaddset(&ending, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ending, &kio.wait_mask);
	sigdelset(&kio.wait_mask, SIGINT);
	sigdelset(&kio.wait_mask, SIGTERM);
	sigdelset(&kio.wait_mask, SIGHUP);
	int r = fuse_session_custom_io(se, &io, fd);
	if (r != 0) {
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(-r),
			    "fuse_session_custom_io: %s", g_strerror(-r));
		return false;
	}
	return true;
}
