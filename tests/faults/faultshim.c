/* faultshim.c - LD_PRELOAD library for tests/integration/test_faults.py:
 * fails the Nth call of chosen syscalls, counted only on objects of one
 * filesystem (the local layer), with a chosen errno.
 *
 * Control is a small file the test and the daemon both map (SFS_FAULT_CTL
 * names it), so the test arms a fault between two requests without
 * restarting the daemon.  While disarmed every call goes straight through;
 * while armed each call of a selected syscall whose target lies on the
 * device `dev` is counted, and the one that makes the count reach `nth`
 * fails with `err` (nth 0: count only).  The ids of the counted calls are
 * logged, so a test can say which step it failed.
 *
 * Target of a call: the fd for fd calls; the directory a name lives in
 * for *at() and path calls (/proc/self/fd/N itself: fd N), so a name
 * about to be created is judged by its parent.
 *
 * Not built with sanitizers: with an ASan daemon the test preloads the
 * ASan runtime first, then this library, whose calls reach ASan's
 * interceptors through RTLD_NEXT.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* One list drives the enum, the name table and nothing else: the test
 * reads the names from the control file. */
#define SYSCALLS(X)                                                            \
	X(openat) X(open) X(mkdirat) X(mknodat) X(symlinkat) X(linkat)         \
	X(unlinkat) X(renameat) X(renameat2) X(setxattr) X(lsetxattr)          \
	X(fsetxattr) X(removexattr) X(fremovexattr) X(pwrite) X(write)         \
	X(copy_file_range) X(ficlone) X(fchownat) X(fchmodat) X(utimensat)     \
	X(futimens) X(fsync) X(fdatasync) X(ftruncate) X(fallocate)            \
	X(fstatat) X(getxattr) X(lgetxattr) X(open_by_handle_at)

enum call_id {
#define ID(n) C_##n,
	SYSCALLS(ID)
#undef ID
	C_COUNT
};

#define CTL_MAGIC 0x5346534641554c54ULL /* "SFSFAULT" */
#define LOG_MAX 1024
#define NAME_LEN 24

/* The control file's layout; test_faults.py reads and writes it with
 * struct at these offsets (all little-endian int64 but the tables). */
struct ctl {
	int64_t magic;     /* 0 */
	int64_t armed;     /* 8: written last by the test */
	int64_t dev;       /* 16: st_dev of the local layer */
	int64_t nth;       /* 24 */
	int64_t err;       /* 32 */
	int64_t mask;      /* 40: bit per call id */
	int64_t count;     /* 48: calls counted since armed */
	int64_t fired;     /* 56: id + 1 of the failed call, 0 none */
	int64_t ncalls;    /* 64: C_COUNT */
	int64_t pad[7];    /* 72 */
	uint8_t log[LOG_MAX];           /* 128: ids of counted calls */
	char names[C_COUNT][NAME_LEN];  /* 128 + LOG_MAX */
};

static struct ctl *ctl;

static const char *const call_names[C_COUNT] = {
#define NAME(n) #n,
	SYSCALLS(NAME)
#undef NAME
};

/* The next definitions of everything wrapped. */
static int (*real_openat)(int, const char *, int, ...);
static int (*real_open)(const char *, int, ...);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_mknodat)(int, const char *, mode_t, dev_t);
static int (*real_symlinkat)(const char *, int, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *,
			     unsigned int);
static int (*real_setxattr)(const char *, const char *, const void *, size_t,
			    int);
static int (*real_lsetxattr)(const char *, const char *, const void *,
			     size_t, int);
static int (*real_fsetxattr)(int, const char *, const void *, size_t, int);
static int (*real_removexattr)(const char *, const char *);
static int (*real_fremovexattr)(int, const char *);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_copy_file_range)(int, off_t *, int, off_t *, size_t,
				       unsigned int);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_fchownat)(int, const char *, uid_t, gid_t, int);
static int (*real_fchmodat)(int, const char *, mode_t, int);
static int (*real_utimensat)(int, const char *, const struct timespec *, int);
static int (*real_futimens)(int, const struct timespec *);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static ssize_t (*real_getxattr)(const char *, const char *, void *, size_t);
static ssize_t (*real_lgetxattr)(const char *, const char *, void *, size_t);
static int (*real_open_by_handle_at)(int, struct file_handle *, int);

#define RESOLVE(n) real_##n = dlsym(RTLD_NEXT, #n)

static void resolve_all(void)
{
	RESOLVE(openat);
	RESOLVE(open);
	RESOLVE(mkdirat);
	RESOLVE(mknodat);
	RESOLVE(symlinkat);
	RESOLVE(linkat);
	RESOLVE(unlinkat);
	RESOLVE(renameat);
	RESOLVE(renameat2);
	RESOLVE(setxattr);
	RESOLVE(lsetxattr);
	RESOLVE(fsetxattr);
	RESOLVE(removexattr);
	RESOLVE(fremovexattr);
	RESOLVE(pwrite);
	RESOLVE(write);
	RESOLVE(copy_file_range);
	RESOLVE(ioctl);
	RESOLVE(fchownat);
	RESOLVE(fchmodat);
	RESOLVE(utimensat);
	RESOLVE(futimens);
	RESOLVE(fsync);
	RESOLVE(fdatasync);
	RESOLVE(ftruncate);
	RESOLVE(fallocate);
	RESOLVE(fstatat);
	RESOLVE(getxattr);
	RESOLVE(lgetxattr);
	RESOLVE(open_by_handle_at);
}

__attribute__((constructor)) static void shim_init(void)
{
	resolve_all();
	const char *path = getenv("SFS_FAULT_CTL");
	if (!path)
		return;
	int fd = real_open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct ctl)) {
		void *p = mmap(NULL, sizeof(struct ctl), PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
		if (p != MAP_FAILED)
			ctl = p;
	}
	close(fd);
	if (!ctl)
		return;
	for (int i = 0; i < C_COUNT; i++)
		snprintf(ctl->names[i], NAME_LEN, "%s", call_names[i]);
	ctl->ncalls = C_COUNT;
	__atomic_store_n(&ctl->magic, (int64_t)CTL_MAGIC, __ATOMIC_RELEASE);
}

static bool armed_for(enum call_id id)
{
	return ctl && __atomic_load_n(&ctl->armed, __ATOMIC_ACQUIRE) &&
	       (ctl->mask & ((int64_t)1 << id));
}

static bool on_dev_fd(int fd)
{
	struct stat st;
	if (fd == AT_FDCWD)
		return real_fstatat(AT_FDCWD, ".", &st, 0) == 0 &&
		       (int64_t)st.st_dev == ctl->dev;
	return fstat(fd, &st) == 0 && (int64_t)st.st_dev == ctl->dev;
}

/* "/proc/self/fd/N" exactly: its fd, else -1. */
static int proc_fd(const char *path)
{
	static const char pfx[] = "/proc/self/fd/";
	if (strncmp(path, pfx, sizeof(pfx) - 1) != 0)
		return -1;
	char *end;
	long n = strtol(path + sizeof(pfx) - 1, &end, 10);
	return *end == '\0' && end != path + sizeof(pfx) - 1 ? (int)n : -1;
}

/* Is the directory that holds dirfd/path on the device? */
static bool on_dev_at(int dirfd, const char *path)
{
	if (!path || !*path)
		return on_dev_fd(dirfd);
	int pfd = proc_fd(path);
	if (pfd >= 0)
		return on_dev_fd(pfd);
	const char *slash = strrchr(path, '/');
	if (!slash)
		return on_dev_fd(dirfd);
	char dir[PATH_MAX];
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(dir))
		return false;
	memcpy(dir, path, len);
	dir[len] = '\0';
	struct stat st;
	return real_fstatat(dirfd, dir, &st, 0) == 0 &&
	       (int64_t)st.st_dev == ctl->dev;
}

/* Count a call on the device; true when this one must fail (errno set). */
static bool inject(enum call_id id, bool on_dev)
{
	if (!on_dev)
		return false;
	int64_t k = __atomic_add_fetch(&ctl->count, 1, __ATOMIC_ACQ_REL);
	if (k <= LOG_MAX)
		ctl->log[k - 1] = (uint8_t)id;
	if (k != ctl->nth)
		return false;
	__atomic_store_n(&ctl->fired, (int64_t)id + 1, __ATOMIC_RELEASE);
	errno = (int)ctl->err;
	return true;
}

#define FAIL_AT(id, dirfd, path, ret)                                          \
	do {                                                                   \
		int saved_ = errno;                                            \
		if (armed_for(id) && inject(id, on_dev_at(dirfd, path)))       \
			return ret;                                            \
		errno = saved_;                                                \
	} while (0)

#define FAIL_FD(id, fd, ret)                                                   \
	do {                                                                   \
		int saved_ = errno;                                            \
		if (armed_for(id) && inject(id, on_dev_fd(fd)))                \
			return ret;                                            \
		errno = saved_;                                                \
	} while (0)

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
		       ? (mode_t)va_arg(ap, int)
		       : 0;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	FAIL_AT(C_openat, dirfd, path, -1);
	return real_openat(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	FAIL_AT(C_open, AT_FDCWD, path, -1);
	return real_open(path, flags, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	FAIL_AT(C_mkdirat, dirfd, path, -1);
	return real_mkdirat(dirfd, path, mode);
}

int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
	FAIL_AT(C_mknodat, dirfd, path, -1);
	return real_mknodat(dirfd, path, mode, dev);
}

int symlinkat(const char *target, int dirfd, const char *path)
{
	FAIL_AT(C_symlinkat, dirfd, path, -1);
	return real_symlinkat(target, dirfd, path);
}

int linkat(int od, const char *op, int nd, const char *np, int flags)
{
	FAIL_AT(C_linkat, nd, np, -1);
	return real_linkat(od, op, nd, np, flags);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	FAIL_AT(C_unlinkat, dirfd, path, -1);
	return real_unlinkat(dirfd, path, flags);
}

int renameat(int od, const char *op, int nd, const char *np)
{
	FAIL_AT(C_renameat, nd, np, -1);
	return real_renameat(od, op, nd, np);
}

int renameat2(int od, const char *op, int nd, const char *np,
	      unsigned int flags)
{
	FAIL_AT(C_renameat2, nd, np, -1);
	return real_renameat2(od, op, nd, np, flags);
}

int setxattr(const char *path, const char *name, const void *val, size_t size,
	     int flags)
{
	/* Follows the final name: judged by the object itself. */
	FAIL_AT(C_setxattr, AT_FDCWD, path, -1);
	return real_setxattr(path, name, val, size, flags);
}

int lsetxattr(const char *path, const char *name, const void *val,
	      size_t size, int flags)
{
	FAIL_AT(C_lsetxattr, AT_FDCWD, path, -1);
	return real_lsetxattr(path, name, val, size, flags);
}

int fsetxattr(int fd, const char *name, const void *val, size_t size,
	      int flags)
{
	FAIL_FD(C_fsetxattr, fd, -1);
	return real_fsetxattr(fd, name, val, size, flags);
}

int removexattr(const char *path, const char *name)
{
	FAIL_AT(C_removexattr, AT_FDCWD, path, -1);
	return real_removexattr(path, name);
}

int fremovexattr(int fd, const char *name)
{
	FAIL_FD(C_fremovexattr, fd, -1);
	return real_fremovexattr(fd, name);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	FAIL_FD(C_pwrite, fd, -1);
	return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
	__attribute__((alias("pwrite")));

ssize_t write(int fd, const void *buf, size_t n)
{
	FAIL_FD(C_write, fd, -1);
	return real_write(fd, buf, n);
}

ssize_t copy_file_range(int in, off_t *ino, int out, off_t *outo, size_t n,
			unsigned int flags)
{
	FAIL_FD(C_copy_file_range, out, -1);
	return real_copy_file_range(in, ino, out, outo, n, flags);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (req == FICLONE)
		FAIL_FD(C_ficlone, fd, -1);
	return real_ioctl(fd, req, arg);
}

int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	FAIL_AT(C_fchownat, dirfd, path, -1);
	return real_fchownat(dirfd, path, uid, gid, flags);
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	FAIL_AT(C_fchmodat, dirfd, path, -1);
	return real_fchmodat(dirfd, path, mode, flags);
}

int utimensat(int dirfd, const char *path, const struct timespec t[2],
	      int flags)
{
	FAIL_AT(C_utimensat, dirfd, path, -1);
	return real_utimensat(dirfd, path, t, flags);
}

int futimens(int fd, const struct timespec t[2])
{
	FAIL_FD(C_futimens, fd, -1);
	return real_futimens(fd, t);
}

int fsync(int fd)
{
	FAIL_FD(C_fsync, fd, -1);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	FAIL_FD(C_fdatasync, fd, -1);
	return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
	FAIL_FD(C_ftruncate, fd, -1);
	return real_ftruncate(fd, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	FAIL_FD(C_fallocate, fd, -1);
	return real_fallocate(fd, mode, off, len);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	FAIL_AT(C_fstatat, dirfd, path, -1);
	return real_fstatat(dirfd, path, st, flags);
}

ssize_t getxattr(const char *path, const char *name, void *val, size_t size)
{
	FAIL_AT(C_getxattr, AT_FDCWD, path, -1);
	return real_getxattr(path, name, val, size);
}

ssize_t lgetxattr(const char *path, const char *name, void *val, size_t size)
{
	FAIL_AT(C_lgetxattr, AT_FDCWD, path, -1);
	return real_lgetxattr(path, name, val, size);
}

int open_by_handle_at(int mount_fd, struct file_handle *h, int flags)
{
	FAIL_FD(C_open_by_handle_at, mount_fd, -1);
	return real_open_by_handle_at(mount_fd, h, flags);
}
