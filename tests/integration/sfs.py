"""sfs.py - harness for scratchfs integration tests (real FUSE mounts).

Test files import this module; they run as `python3 tests/integration/X.py`
from the build directory (make check), so they put their own directory on
sys.path before importing it.

Environment:
  SCRATCHFS_BIN     the binary to test (default: src/scratchfs relative to the
                    current directory, then to this file's ../../src).
  SCRATCHFS_TMPDIR  where temporary layers go (default /var/tmp).
  SFS_DEBUG=1       run the daemon with -d and print its log on failure.
  SFS_EXTRA_OPTS=.. appended to every mount's -o options, to run the suite
                    in another mode (multithread, writeback_cache, ...).
  SFS_TIMEOUT=SECS  a test file still running after SECS (default 300) is
                    a failure: stacks and daemon logs are printed, hung
                    FUSE connections aborted, mounts detached.
  SFS_IGNORE_ATIME=1  do not check shared-layer atimes (only for trying the
                    tests against a stand-in such as fuse-overlayfs).

Every test file runs in a mount namespace of its own (main()), so test files
running side by side never hold each other's mounts.

Exit status of a test file (automake conventions): 0 pass, 1 fail, 77 skip.
A test file is skipped only when it cannot run at all (not root, no
/dev/fuse); failures are never turned into skips.
"""

import collections
import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77

# ---------------------------------------------------------------- binary


KERNEL = "kernel-overlay"


def binary():
    b = os.environ.get("SCRATCHFS_BIN")
    if b == KERNEL:
        return b
    if b:
        return os.path.abspath(b)
    for cand in ("src/scratchfs", os.path.join(HERE, "..", "..", "src", "scratchfs")):
        if os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return os.path.abspath("src/scratchfs")


def is_kernel():
    """SCRATCHFS_BIN=kernel-overlay runs the tests against kernel overlayfs
    (mount -t overlay), the reference the expectations are modelled on; a
    development aid only."""
    return os.environ.get("SCRATCHFS_BIN") == KERNEL


def python_for_users():
    """A python interpreter that unprivileged users can execute."""
    for p in ("/usr/bin/python3", sys.executable):
        if os.path.exists(p):
            return p
    return sys.executable


# ---------------------------------------------------------------- libc

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
FICLONE = 0x40049409
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


CLONE_NEWNS = 0x00020000
PR_SET_CHILD_SUBREAPER = 36


_IN_PRIVATE_NAMESPACE = False


def enter_private_namespace(subreaper=False):
    """Run the rest of this process in a mount namespace of its own, so its
    mounts (and a test's mess) stay invisible to the host, and a test
    that unshares meanwhile gets no copy of them (a copy keeps a FUSE
    connection, and so its daemon, alive after the unmount).  main() does
    this for every test file.  subreaper: also adopt orphaned descendants
    (daemons that fork away)."""
    global _IN_PRIVATE_NAMESPACE
    if subreaper and _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(e))
    if _IN_PRIVATE_NAMESPACE:
        return
    if _libc.unshare(CLONE_NEWNS) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "unshare(CLONE_NEWNS): %s" % os.strerror(e))
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    drop_foreign_mounts()
    _IN_PRIVATE_NAMESPACE = True


MNT_DETACH = 2


def drop_foreign_mounts():
    """In a new mount namespace: detach the copies of other tests' mounts
    (FUSE mounts, anything below the temporary directory).  A copy keeps
    its FUSE connection alive, so the daemon of a test running side by
    side would not end when that test unmounts."""
    base = os.path.realpath(os.environ.get("SCRATCHFS_TMPDIR", "/var/tmp")) + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mp = parts[4].replace("\\040", " ")
            fstype = parts[parts.index("-") + 1]
            if fstype.startswith("fuse") or mp.startswith(base):
                found.append(mp)
    for mp in sorted(found, key=len, reverse=True):
        _libc.umount2(os.fsencode(mp), MNT_DETACH)


def thread_states(pid):
    """One line per thread of pid: name, state, kernel wait channel and
    user-space program counter area (what a hung daemon is doing)."""
    lines = []
    try:
        tids = sorted(os.listdir("/proc/%d/task" % pid), key=int)
    except OSError as e:
        return "  (%s)" % e
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "comm") as f:
                comm = f.read().strip()
            with open(base + "stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(base + "wchan") as f:
                wchan = f.read().strip()
            with open(base + "syscall") as f:
                sysc = f.read().split()[0]
        except OSError as e:
            lines.append("  %s: %s" % (tid, e))
            continue
        lines.append("  %s %-16s state %s wchan %s syscall %s" % (tid, comm, state, wchan, sysc))
    return "\n".join(lines)


def daemon_pids(mnt):
    """Live scratchfs processes whose command line names mnt (each test
    has a mount point of its own)."""
    want = os.fsencode(os.path.realpath(mnt))
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"scratchfs" and want in argv:
            out.append(int(d))
    return out


def renameat2(old, new, flags):
    """renameat2(AT_FDCWD, old, AT_FDCWD, new, flags); raises OSError."""
    f = _libc.renameat2
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    ret = f(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags)
    _check(ret, "renameat2(%s, %s, %d)" % (old, new, flags))


class _timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, follow=True):
    """atime/mtime: (sec, nsec) tuples, or UTIME_NOW / UTIME_OMIT."""
    ts = (_timespec * 2)()
    for i, t in enumerate((atime, mtime)):
        if t in (UTIME_NOW, UTIME_OMIT):
            ts[i].tv_sec, ts[i].tv_nsec = 0, t
        else:
            ts[i].tv_sec, ts[i].tv_nsec = t
    f = _libc.utimensat
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_timespec), ctypes.c_int]
    ret = f(AT_FDCWD, os.fsencode(path), ts, 0 if follow else AT_SYMLINK_NOFOLLOW)
    _check(ret, "utimensat(%s)" % path)


def fallocate(fd, mode, offset, length):
    f = _libc.fallocate
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    _check(f(fd, mode, offset, length), "fallocate")


# ---------------------------------------------------------------- helpers


def write_file(path, data=b"", mode=None, mkdirs=True):
    if isinstance(data, str):
        data = data.encode()
    if mkdirs:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def read_noatime(path):
    """Read without touching the file's atime (for inspecting lower layers)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def sha_noatime(path):
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
    finally:
        os.close(fd)
    return h.hexdigest()


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def errno_of(fn, *args, **kw):
    """Call fn; return 0 if it succeeded, else the OSError's errno."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    return 0


def is_whiteout(path):
    """Kernel overlayfs whiteout: char device 0/0, or a `.wh.NAME` file."""
    try:
        st = os.lstat(path)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return True
    except FileNotFoundError:
        pass
    d, n = os.path.split(path)
    return os.path.lexists(os.path.join(d, ".wh." + n))


def make_whiteout(path):
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def xattrs_of(path, follow=False):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=follow)
    except OSError:
        return out
    for n in sorted(names):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=follow)
        except OSError as e:
            out[n] = "<%s>" % errno.errorcode.get(e.errno, e.errno)
    return out


def request_counts(m, fn, skip_root=False):
    """The requests a mount started with -d received while fn ran, by
    opcode (each is one "opcode: NAME" line of its log); skip_root: leave
    out those about the root."""
    fd = m.log.fileno()
    time.sleep(0.1)  # let replies and FORGETs of earlier steps land
    start = os.fstat(fd).st_size
    fn()
    time.sleep(0.1)
    end = os.fstat(fd).st_size
    text = os.pread(fd, end - start, start).decode(errors="replace")
    ops = re.findall(r"opcode: (\w+) \(\d+\), nodeid: (\d+)", text)
    return collections.Counter(op for op, node in ops
                               if not (skip_root and node == "1"))


def wait_for(cond, timeout=3.0, interval=0.05):
    """Poll cond() until it returns a true value or timeout passes; returns
    the last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def run(cmd, check=True, **kw):
    """subprocess.run with captured text output; on failure the assertion
    message carries the command's stdout and stderr."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if check and p.returncode != 0:
        raise AssertionError("command %r failed with %d\nstdout:\n%s\nstderr:\n%s"
                             % (cmd, p.returncode, p.stdout, p.stderr))
    return p


def walk(root, follow_mount=True):
    """Sorted list of paths (relative to root) of everything below root."""
    out = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for n in dns + fns:
            out.append(os.path.relpath(os.path.join(dp, n), root))
    return sorted(out)


def du(*roots):
    """(allocated bytes, inodes) below roots, the roots themselves aside,
    each hardlinked inode once: what du and the kubelet count, and what
    scratchfs counts as the local layer's use."""
    seen, total = set(), 0
    for root in roots:
        for dp, dns, fns in os.walk(root):
            for n in dns + fns:
                st = os.lstat(os.path.join(dp, n))
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_blocks * 512
    return total, len(seen)


def tree_view(root, contents=True):
    """{relpath: description} of what a user sees below root: type, mode,
    size, content digest, symlink target. Ownership and times included."""
    view = {}
    for rel in walk(root):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        d = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
             "uid": st.st_uid, "gid": st.st_gid}
        if stat.S_ISREG(st.st_mode):
            d["size"] = st.st_size
            d["mtime_ns"] = st.st_mtime_ns
            if contents:
                d["sha"] = sha_file(p)
        elif stat.S_ISLNK(st.st_mode):
            d["target"] = os.readlink(p)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            d["rdev"] = st.st_rdev
        view[rel] = d
    return view


def diff_views(a, b, na="a", nb="b", limit=30):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append("  %s: %s=%r %s=%r" % (k, na, a.get(k), nb, b.get(k)))
    if len(lines) > limit:
        lines = lines[:limit] + ["  ... %d more" % (len(lines) - limit)]
    return "\n".join(lines)


# ------------------------------------------------- shared-layer snapshots


def lower_digest(root):
    """Everything about a shared-layer tree that scratchfs must never change:
    names, types, modes, owners, sizes, contents, symlink targets, rdev,
    mtimes, link counts, inode numbers, xattrs, and the atime of regular
    files (they get read through the mount; scratchfs must read them with
    O_NOATIME).  Reads with O_NOATIME itself."""
    out = {}
    for dp, dns, fns in os.walk(root):
        names = dns + fns
        if dp == root:
            names = [""] + names
        for n in names:
            p = os.path.join(dp, n) if n else dp
            st = os.lstat(p)
            d = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid, "mtime_ns": st.st_mtime_ns,
                 "nlink": st.st_nlink, "ino": st.st_ino}
            if stat.S_ISREG(st.st_mode):
                d.update(size=st.st_size, sha256=sha_noatime(p))
                if not os.environ.get("SFS_IGNORE_ATIME"):
                    d["atime_ns"] = st.st_atime_ns
            elif stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                d["rdev"] = st.st_rdev
            d["xattrs"] = xattrs_of(p)
            out[os.path.relpath(p, root)] = d
    return out


def describe_digest_diff(before, after, limit=20):
    lines = []
    for k in sorted(set(before) | set(after)):
        b, a = before.get(k), after.get(k)
        if b == a:
            continue
        if b is None:
            lines.append("  %s: created in the shared layer" % k)
        elif a is None:
            lines.append("  %s: removed from the shared layer" % k)
        else:
            for f in sorted(set(b) | set(a)):
                if b.get(f) != a.get(f):
                    lines.append("  %s: %s %r -> %r" % (k, f, b.get(f), a.get(f)))
    if len(lines) > limit:
        lines = lines[:limit] + ["  ... %d more" % (len(lines) - limit)]
    return "\n".join(lines)


def age_atimes(root):
    """Set every regular file's atime two days before its mtime (without
    changing the mtime).  Under relatime, any later read that does not use
    O_NOATIME then updates the atime, so lower_digest() catches it."""
    for dp, dns, fns in os.walk(root):
        for n in fns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                a = st.st_mtime_ns - 2 * 86400 * 10**9
                os.utime(p, ns=(a, st.st_mtime_ns), follow_symlinks=False)


# ---------------------------------------------------------------- mounts


def mountinfo_entry(path):
    """The /proc/self/mountinfo line (split) of the mount AT path, or None."""
    path = os.path.realpath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mp = parts[4].replace("\\040", " ").replace("\\011", "\t").replace(
                "\\012", "\n").replace("\\134", "\\")
            if mp == path:
                found = parts  # the last one is on top
    return found


def is_mounted(path):
    return mountinfo_entry(path) is not None


def force_umount(path):
    """Best effort: detach whatever is mounted at path."""
    for _ in range(20):
        if not is_mounted(path):
            return
        subprocess.run(["fusermount3", "-u", "-z", path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if is_mounted(path):
            subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        time.sleep(0.05)


class Layers:
    """A temporary set of layer directories:
        base/lower0 .. lowerN-1 (lowers[0] is on top), base/upper, base/work,
        base/mnt.
    tmpfs=True puts every lower and the upper(+work) on their own fresh tmpfs
    mounts, so the layers are different filesystems whose inode numbers
    collide.  upper_size="2m" puts upper(+work) alone on a tmpfs that small."""

    def __init__(self, nlower=1, tmpfs=False, prefix="sfs-it-", upper_size=None):
        tmp = os.environ.get("SCRATCHFS_TMPDIR", "/var/tmp")
        self.base = tempfile.mkdtemp(prefix=prefix, dir=tmp)
        os.chmod(self.base, 0o755)  # other users reach the mount point
        self.fs_mounts = []
        self.lowers = []
        for i in range(nlower):
            if tmpfs:
                fsdir = self._tmpfs("lowerfs%d" % i)
                d = os.path.join(fsdir, "lower")
            else:
                d = os.path.join(self.base, "lower%d" % i)
            os.makedirs(d)
            self.lowers.append(d)
        if tmpfs or upper_size:
            fsdir = self._tmpfs("upperfs", upper_size or "512m")
            self.upper = os.path.join(fsdir, "upper")
            self.work = os.path.join(fsdir, "work")
        else:
            self.upper = os.path.join(self.base, "upper")
            self.work = os.path.join(self.base, "work")
        os.makedirs(self.upper)
        os.makedirs(self.work)
        self.mnt = os.path.join(self.base, "mnt")
        os.makedirs(self.mnt)

    def _tmpfs(self, name, size="512m"):
        d = os.path.join(self.base, name)
        os.makedirs(d)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", d],
                       check=True)
        self.fs_mounts.append(d)
        return d

    @property
    def lower(self):
        return self.lowers[0]

    def L(self, *parts, layer=0):
        return os.path.join(self.lowers[layer], *parts)

    def U(self, *parts):
        return os.path.join(self.upper, *parts)

    def M(self, *parts):
        return os.path.join(self.mnt, *parts)

    def options(self, **opts):
        o = {"lowerdir": ":".join(self.lowers), "upperdir": self.upper,
             "workdir": self.work}
        o.update(opts)
        return o

    def lower_digests(self):
        return [lower_digest(d) for d in self.lowers]

    def cleanup(self):
        force_umount(self.mnt)
        for d in reversed(self.fs_mounts):
            force_umount(d)
        shutil.rmtree(self.base, ignore_errors=True)
        self.fs_mounts = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def format_options(opts):
    parts = []
    for k, v in opts.items():
        if v is None or v is False:
            continue
        parts.append(k if v is True else "%s=%s" % (k, v))
    return ",".join(parts)


class DaemonError(AssertionError):
    pass


ACTIVE_MOUNTS = []


def abort_fuse_connection(mnt):
    """Abort the FUSE connection of the mount at mnt (unblocks every
    process waiting on a hung daemon)."""
    e = mountinfo_entry(mnt)
    if not e:
        return
    minor = e[2].split(":")[1]
    try:
        with open("/sys/fs/fuse/connections/%s/abort" % minor, "w") as f:
            f.write("1")
    except OSError:
        pass


def _watchdog(seconds):
    time.sleep(seconds)
    sys.stderr.write("\n[sfs] TIMEOUT: test file still running after %d s "
                     "(SFS_TIMEOUT); daemon logs and stacks follow\n" % seconds)
    import faulthandler
    faulthandler.dump_traceback(all_threads=True)
    for m in list(ACTIVE_MOUNTS):
        sys.stderr.write("[sfs] daemon output for %s:\n%s\n" % (m.mnt, m.output()))
        abort_fuse_connection(m.mnt)
        if m.proc is not None and m.proc.poll() is None:
            m.proc.kill()
        force_umount(m.mnt)
        try:
            m.layers.cleanup()
        except Exception:  # noqa: BLE001
            pass
    sys.stderr.flush()
    os._exit(1)


class Mount:
    """One scratchfs process serving layers.mnt, run in the foreground (-f)
    so its exit status and stderr can be checked.

    check_lower: take lower_digest() of every shared layer before mounting
    and assert it is unchanged after unmounting (tests that edit the shared
    layer directly call resnapshot() after each edit)."""

    def __init__(self, layers, extra_args=(), check_lower=True, mnt=None,
                 fd_limit=None, env=None, **opts):
        self.layers = layers
        self.env = env  # extra environment variables of the daemon
        self.fd_limit = fd_limit  # RLIMIT_NOFILE the daemon starts with
        self.mnt = mnt or layers.mnt
        self.opts = layers.options(**opts)
        self.extra_args = list(extra_args)
        self.check_lower = check_lower
        self.proc = None
        self.log = None
        self.snapshot = None

    # -- lifecycle
    def start(self, timeout=15):
        if self.check_lower:
            self.resnapshot()
        if is_kernel():
            return self._start_kernel()
        args = [binary(), "-f"]
        if os.environ.get("SFS_DEBUG"):
            args.append("-d")
        opts = format_options(self.opts)
        if os.environ.get("SFS_EXTRA_OPTS"):
            opts += "," + os.environ["SFS_EXTRA_OPTS"]
        args += self.extra_args + ["-o", opts, self.mnt]
        self.args = args
        self.log = tempfile.TemporaryFile()
        def limit_fds():
            lim = (self.fd_limit, self.fd_limit)
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=limit_fds if self.fd_limit else None)
        ACTIVE_MOUNTS.append(self)
        end = time.monotonic() + timeout
        while True:
            if is_mounted(self.mnt):
                break
            rc = self.proc.poll()
            if rc is not None:
                raise DaemonError("scratchfs exited with %d before mounting\n%s"
                                  % (rc, self.describe()))
            if time.monotonic() > end:
                self.proc.kill()
                self.proc.wait()
                raise DaemonError("mount did not appear within %ds\n%s"
                                  % (timeout, self.describe()))
            time.sleep(0.01)
        return self

    def _start_kernel(self):
        o = dict(self.opts)
        kopts = {"lowerdir": o["lowerdir"], "upperdir": o["upperdir"],
                 "workdir": o["workdir"], "redirect_dir": "on", "index": "on",
                 "metacopy": "off" if o.get("metacopy") == "off" else "on"}
        self.args = ["mount", "-t", "overlay", "overlay", "-o", format_options(kopts), self.mnt]
        self.log = tempfile.TemporaryFile()
        subprocess.run(self.args, check=True, stdout=self.log, stderr=subprocess.STDOUT)
        self.proc = subprocess.Popen(["sleep", "100000"])
        return self

    def output(self):
        if self.log is None:
            return ""
        self.log.seek(0)
        data = self.log.read().decode(errors="replace")
        if len(data) > 20000:
            data = "[... %d bytes cut ...]\n" % (len(data) - 20000) + data[-20000:]
        return data

    def describe(self):
        return "command: %s\ndaemon output:\n%s" % (" ".join(getattr(self, "args", [])),
                                                    self.output())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def umount(self, check=True):
        """Unmount with fusermount3 -u and wait for the daemon; assert it
        exited 0 (unless check=False)."""
        if self.proc is None:
            return
        problems = []
        if is_kernel():
            subprocess.run(["umount", self.mnt], check=True)
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.log.close()
            self.log = None
            if check and self.check_lower and self.snapshot is not None:
                after = self.layers.lower_digests()
                for i, (b, a) in enumerate(zip(self.snapshot, after)):
                    if b != a:
                        raise AssertionError("shared layer %s was modified:\n%s" % (
                            self.layers.lowers[i], describe_digest_diff(b, a)))
            return problems
        if self.proc.poll() is not None:
            problems.append("daemon died while mounted (exit status %d)" % self.proc.returncode)
            force_umount(self.mnt)
        else:
            ok = False
            last = None
            for _ in range(100):
                p = subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                if p.returncode == 0:
                    ok = True
                    break
                last = p.stderr.strip()
                if not is_mounted(self.mnt):
                    ok = True
                    break
                time.sleep(0.1)
            if not ok:
                problems.append("fusermount3 -u failed: %s" % last)
                force_umount(self.mnt)
            t0 = time.monotonic()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append("daemon still running 10 s after unmount; its threads:\n%s"
                                % thread_states(self.proc.pid))
                self.proc.kill()
                self.proc.wait()
            if time.monotonic() - t0 > 3:
                sys.stderr.write("[sfs] daemon took %.1f s to exit after unmount\n"
                                 % (time.monotonic() - t0))
            if self.proc.returncode != 0:
                problems.append("daemon exited with %d after unmount" % self.proc.returncode)
        desc = self.describe()
        if self in ACTIVE_MOUNTS:
            ACTIVE_MOUNTS.remove(self)
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        if check and problems:
            raise DaemonError("; ".join(problems) + "\n" + desc)
        if check and self.check_lower and self.snapshot is not None:
            after = self.layers.lower_digests()
            for i, (b, a) in enumerate(zip(self.snapshot, after)):
                if b != a:
                    raise AssertionError("shared layer %s was modified:\n%s"
                                         % (self.layers.lowers[i], describe_digest_diff(b, a)))
        return problems

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self in ACTIVE_MOUNTS:
            ACTIVE_MOUNTS.remove(self)

    def remount(self, resnapshot=True):
        """Unmount (with its checks) and mount again.  resnapshot=False
        keeps the first snapshot and leaves the shared layer untouched in
        between (taking a snapshot ages atimes, which changes ctimes)."""
        self.umount()
        check, self.check_lower = self.check_lower, self.check_lower and resnapshot
        try:
            self.start()
        finally:
            self.check_lower = check

    def resnapshot(self):
        """Re-take the shared-layer snapshot (after the test changed the
        shared layer on purpose)."""
        for d in self.layers.lowers:
            age_atimes(d)
        self.snapshot = self.layers.lower_digests()

    # -- path helpers
    def M(self, *parts):
        return os.path.join(self.mnt, *parts)

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, evalue, tb):
        if etype is None:
            self.umount()
        elif self.proc is not None:
            # The test already failed: show the daemon's log, still unmount.
            sys.stderr.write("\n[sfs] daemon output:\n%s\n" % self.output())
            self.umount(check=False)
        return False


def mount(layers, **kw):
    return Mount(layers, **kw)


class TestCase(unittest.TestCase):
    """Base class: self.layers is a fresh Layers per test (nlower=NLOWER,
    tmpfs=TMPFS); self.mount(**opts) returns a started Mount that is
    unmounted (with its checks) at the end of the test unless already."""

    NLOWER = 1
    TMPFS = False
    UPPER_SIZE = None
    maxDiff = 4000

    def setUp(self):
        self.layers = Layers(nlower=self.NLOWER, tmpfs=self.TMPFS, upper_size=self.UPPER_SIZE)
        self._mounts = []

    def tearDown(self):
        failed = self._outcome_failed()
        errors = []
        for m in self._mounts:
            if m.proc is not None:
                if failed:
                    sys.stderr.write("\n[sfs] daemon output (%s):\n%s\n" % (self.id(), m.output()))
                    m.umount(check=False)
                else:
                    try:
                        m.umount()
                    except AssertionError as e:
                        errors.append(str(e))
        self.layers.cleanup()
        if errors:
            self.fail("\n".join(errors))

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        res = getattr(outcome, "result", None)
        if res is not None and hasattr(res, "failures"):
            for t, _ in res.failures + res.errors:
                if t is self:
                    return True
            return False
        errs = getattr(outcome, "errors", [])
        return any(exc is not None for _, exc in errs)

    def mount(self, check_lower=True, extra_args=(), fd_limit=None, env=None,
              **opts):
        m = Mount(self.layers, check_lower=check_lower, extra_args=extra_args,
                  fd_limit=fd_limit, env=env, **opts)
        self._mounts.append(m)
        m.start()
        return m

    # -- assertions
    def assertErrno(self, expected, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except OSError as e:
            exp = expected if isinstance(expected, (tuple, list, set)) else (expected,)
            if e.errno not in exp:
                self.fail("%s%r: expected errno %s, got %s (%s)" % (
                    getattr(fn, "__name__", fn), args,
                    "/".join(errno.errorcode.get(x, str(x)) for x in exp),
                    errno.errorcode.get(e.errno, e.errno), e))
            return e
        self.fail("%s%r: succeeded, expected errno %s" % (
            getattr(fn, "__name__", fn), args,
            "/".join(errno.errorcode.get(x, str(x)) for x in
                     (expected if isinstance(expected, (tuple, list, set)) else (expected,)))))

    def assertContent(self, path, data):
        if isinstance(data, str):
            data = data.encode()
        got = read_file(path)
        if got != data:
            self.fail("%s: content %r (len %d), expected %r (len %d)" % (
                path, got[:80], len(got), data[:80], len(data)))

    def assertWhiteout(self, path):
        self.assertTrue(is_whiteout(path), "%s: no whiteout in the local layer (%s)" % (
            path, os.listdir(os.path.dirname(path)) if os.path.isdir(os.path.dirname(path))
            else "parent missing"))


# ---------------------------------------------------------------- runner


def skip_file(reason):
    print("SKIP: %s" % reason)
    sys.exit(SKIP)


def require_binary():
    """For a test file of the scratchfs binary itself (its options, fsck,
    limits): skip the whole file when the suite runs against kernel
    overlayfs."""
    if is_kernel():
        skip_file("%s tests the scratchfs binary, not kernel overlayfs"
                  % os.path.basename(sys.argv[0]))


def require_environment():
    if os.geteuid() != 0:
        skip_file("integration tests mount filesystems and need root")
    if not os.path.exists("/dev/fuse"):
        skip_file("/dev/fuse is missing")


def main(binary_only=False, subreaper=False):
    """Run the unittest cases of __main__; exit 0/1, or 77 if every test
    was skipped.  binary_only: see require_binary(); subreaper: see
    enter_private_namespace()."""
    require_environment()
    if binary_only:
        require_binary()
    enter_private_namespace(subreaper)
    b = binary()
    if not is_kernel() and not os.access(b, os.X_OK):
        print("FAIL: scratchfs binary %s not found (set SCRATCHFS_BIN)" % b)
        sys.exit(1)
    print("binary under test: %s" % b)
    import threading
    limit = int(os.environ.get("SFS_TIMEOUT", "300"))
    threading.Thread(target=_watchdog, args=(limit,), daemon=True).start()
    t0 = time.monotonic()
    argv = [sys.argv[0]] + sys.argv[1:]
    prog = unittest.main(module="__main__", argv=argv, exit=False, verbosity=2,
                         buffer=False)
    r = prog.result
    n_skip = len(r.skipped)
    n_fail = len(r.failures) + len(r.errors) + len(getattr(r, "unexpectedSuccesses", []))
    n_pass = r.testsRun - n_fail - n_skip
    print("%s: %d passed, %d failed, %d skipped (%.1f s)" % (
        os.path.basename(sys.argv[0]), n_pass, n_fail, n_skip, time.monotonic() - t0))
    if n_fail:
        sys.exit(1)
    if r.testsRun and n_skip == r.testsRun:
        sys.exit(SKIP)
    sys.exit(0)
