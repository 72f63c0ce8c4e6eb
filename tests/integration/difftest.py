"""difftest.py - differential testing of scratchfs against kernel overlayfs.

A Pair holds two mounts of identical starting layers: scratchfs, and the
kernel's overlayfs with index=on,redirect_dir=on,metacopy=on (the kernel
features scratchfs's on-disk format and inode rules follow).  Pair.step(op)
runs one operation on both and returns the differences a user could see:
the errno of the operation, then, below the mount point, names, types
(lstat and readdir's d_type), sizes, contents, modes, owners, link counts,
user.* xattrs, symlink targets, mtimes set by utimes or kept from the shared
layer, which names share an inode, and which names changed st_ino.

An operation is a tuple (NAME, ARGS...), see OPS and apply_op(); the test
(test_differential.py) draws them with hypothesis, the soak
(soak_differential.py) with random.Random, and both replay them.

Paths come from a small universe (PATHS) so operations keep running into
each other: renames over existing names, links to renamed files, rmdir of
directories that merge two shared layers.  Symlink targets never contain
".." nor start with "/", so nothing followed leaves the mount.

What differs on purpose (scratchfs(8)) is left out of the comparison and
listed in DOCUMENTED; see normalize() for where each one is applied.
"""

import errno
import os
import shutil
import stat
import subprocess
import tempfile

import sfs

PREFIXES = ["", "d1", "d1/s", "d2", "o", "s"]
LEAVES = ["a", "b", "h", "l", "s"]
PATHS = sorted({os.path.join(p, n) for p in PREFIXES for n in LEAVES} |
               set(PREFIXES[1:]))
FD_SLOTS = 2  # files held open across other operations
OPEN_FLAGS = [os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDWR | os.O_APPEND,
              os.O_WRONLY | os.O_TRUNC]
SYMLINK_TARGETS = ["a", "h", "s", "s/a", "nowhere"]
MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o4755, 0o2775, 0o1777, 0o000]
OWNERS = [(0, 0), (1000, 1000), (65534, 65534), (1000, -1), (-1, 65534)]
# (atime, mtime) in ns; all long before any test runs (see mtime_class)
TIMES = [(1000000000 * 10**9, 1000000000 * 10**9 + 5),
         (1100000000 * 10**9 + 123456789, 1200000000 * 10**9)]
XATTR_NAMES = ["user.a", "user.b"]
XATTR_VALUES = [b"", b"v1", b"x" * 300]
RENAME_FLAGS = [0, sfs.RENAME_NOREPLACE, sfs.RENAME_EXCHANGE]
MAX_OFFSET = 9000
MAX_LEN = 5000
MAX_SIZE = 12000
LAYER_MTIME = 1500000000 * 10**9  # every starting object's mtime
OLD = 1600000000 * 10**9          # mtimes below this were set, not "now"

# Differences that are scratchfs's documented choices: not compared.
DOCUMENTED = [
    "st_ino numbers: scratchfs puts the layer index in the top 8 bits "
    "(scratchfs(8) INODE NUMBERS); only which names share an inode and "
    "whether a name's st_ino changed are compared",
    "a live shared layer (scratchfs(8) LIVE SHARED LAYER): the shared "
    "layers are not changed during a run, so this never comes up",
    "directory st_size and st_nlink: the kernel reports 1 link for a "
    "directory that merges layers, and sizes are the local filesystem's",
    "atime and ctime, and the mtime of anything changed during the run "
    "(both are \"now\"); mtimes set by utimes or kept from a shared layer "
    "are compared exactly",
    "a copy-up updates the mtime of the directory it lands in, which kernel "
    "overlayfs puts back (scratchfs(8) COMPARED WITH OVERLAYFS): a directory "
    "whose mtime is new in scratchfs and old in the kernel is accepted",
]

# Where the kernel is wrong and scratchfs right: accepted, named here.
KERNEL_QUIRKS = [
    "opening a metadata-only copy for writing (a file chmod'ed, linked... "
    "before) copies its data and gives it a new mtime in the kernel, "
    "without any write; scratchfs keeps the mtime (copyup.c fill_data).  "
    "Pair.quirky holds the kernel inodes this happened to",
]


def documented(key, s, k, quirky):
    """Is a difference in field key (scratchfs s, kernel k) of an entry one
    of DOCUMENTED or KERNEL_QUIRKS?  quirky: the entry's kernel inode had
    its mtime changed by an open for writing."""
    if key != "mtime" or s["mtime"] == k["mtime"]:
        return False
    if s["type"] == stat.S_IFDIR:
        return s["mtime"] == "new"
    return quirky and k["mtime"] == "new"


def opens_for_writing(op):
    return op[0] == "open" and op[3] & (os.O_WRONLY | os.O_RDWR) and \
        not op[3] & os.O_TRUNC

# ---------------------------------------------------------------- layers


def data_pattern(seed, length):
    return bytes((seed * 7 + i * 13 + (i >> 8)) % 251 for i in range(length))


def build_layers(top, bottom):
    """The starting layers (the same in both members of a Pair): files in
    both shared layers, one hidden by a whiteout and one by an opaque
    directory, a directory merged from both, a file with three hardlinked
    names, symlinks, user xattrs, and a few owners and modes."""
    def w(root, rel, data, mode=0o644):
        sfs.write_file(os.path.join(root, rel), data)
        os.chmod(os.path.join(root, rel), mode)

    w(bottom, "a", b"bottom a\n" * 10)
    w(bottom, "b", b"whited out")
    w(bottom, "s", data_pattern(3, 700))
    w(bottom, "d1/b", b"d1/b from the bottom layer")
    w(bottom, "d1/s/a", data_pattern(4, 3000), 0o600)
    w(bottom, "o/a", b"hidden by the opaque o")
    os.setxattr(os.path.join(bottom, "s"), "user.b", b"bottom")

    w(top, "a", data_pattern(1, 5000))
    w(top, "h", data_pattern(2, 1500), 0o755)
    w(top, "d1/a", data_pattern(5, 2000), 0o600)
    os.makedirs(os.path.join(top, "d1", "s"))
    os.makedirs(os.path.join(top, "d2"))
    os.link(os.path.join(top, "h"), os.path.join(top, "d1", "h"))
    os.link(os.path.join(top, "h"), os.path.join(top, "d2", "b"))
    w(top, "o/b", b"o/b on top")
    os.setxattr(os.path.join(top, "o"), "trusted.overlay.opaque", b"y")
    os.symlink("a", os.path.join(top, "l"))
    os.symlink("h", os.path.join(top, "d1", "l"))
    sfs.make_whiteout(os.path.join(top, "b"))
    os.setxattr(os.path.join(top, "a"), "user.a", b"top")
    os.chown(os.path.join(top, "d2"), 1000, 1000)
    os.chown(os.path.join(top, "d1", "a"), 65534, 65534)
    for root in (top, bottom):
        for dp, dns, fns in os.walk(root, topdown=False):
            for n in fns + dns:
                os.utime(os.path.join(dp, n), ns=(LAYER_MTIME, LAYER_MTIME),
                         follow_symlinks=False)
        os.utime(root, ns=(LAYER_MTIME, LAYER_MTIME))


class Side:
    """One member of a Pair: layers in base/{lower0,lower1,upper,work,mnt}."""

    def __init__(self, base, name):
        self.name = name
        self.base = os.path.join(base, name)
        self.lowers = [os.path.join(self.base, "lower0"), os.path.join(self.base, "lower1")]
        self.upper = os.path.join(self.base, "upper")
        self.work = os.path.join(self.base, "work")
        self.mnt = os.path.join(self.base, "mnt")
        for d in self.lowers + [self.upper, self.work, self.mnt]:
            os.makedirs(d)
        build_layers(*self.lowers)
        self.prev_ino = {}
        self.fds = [None] * FD_SLOTS

    def close_fds(self):
        for i, fd in enumerate(self.fds):
            if fd is not None:
                os.close(fd)
                self.fds[i] = None

    def P(self, rel):
        return os.path.join(self.mnt, rel)


class KernelSide(Side):
    OPTIONS = "index=on,redirect_dir=on,metacopy=on"

    def mount(self):
        opts = "lowerdir=%s,upperdir=%s,workdir=%s,%s" % (
            ":".join(self.lowers), self.upper, self.work, self.OPTIONS)
        sfs.run(["mount", "-t", "overlay", "overlay", "-o", opts, self.mnt])

    def umount(self):
        sfs.run(["umount", self.mnt])

    def close(self):
        self.close_fds()
        sfs.force_umount(self.mnt)


class _Layers:
    """What sfs.Mount needs of sfs.Layers, over a Side's directories."""

    options = sfs.Layers.options
    lower_digests = sfs.Layers.lower_digests

    def __init__(self, side):
        self.lowers, self.upper, self.work, self.mnt = (
            side.lowers, side.upper, side.work, side.mnt)


class ScratchfsSide(Side):
    def __init__(self, base, name, extra_args=(), **opts):
        super().__init__(base, name)
        self.m = sfs.Mount(_Layers(self), extra_args=extra_args, **opts)

    def mount(self):
        self.m.start()

    def umount(self):
        # asserts a clean daemon exit and an unchanged shared layer
        self.m.umount()

    def close(self):
        self.close_fds()
        if self.m.proc is not None:
            self.m.umount(check=False)
        sfs.force_umount(self.mnt)


# ---------------------------------------------------------------- operations

OPS = ["create", "write", "truncate", "link", "unlink", "rename", "mkdir", "rmdir",
       "chmod", "chown", "utimes", "setxattr", "removexattr", "symlink", "remount",
       "open", "fdwrite", "fdread", "fdstat", "close"]


def fd_op(side, name, slot, args):
    """The operations on a file held open in side.fds[slot]: what they
    return besides the errno (data read, st_size/st_nlink of fstat)."""
    if name == "open":
        if side.fds[slot] is not None:
            os.close(side.fds[slot])
            side.fds[slot] = None
        path, flags = args
        side.fds[slot] = os.open(side.P(path), flags | os.O_NOFOLLOW)
        return None
    fd = side.fds[slot]
    if fd is None:
        raise OSError(errno.EBADF, "slot %d not open" % slot)
    if name == "fdwrite":
        offset, length, seed = args
        return os.pwrite(fd, data_pattern(seed, length), offset)
    if name == "fdread":
        offset, length = args
        return os.pread(fd, length, offset)
    if name == "fdstat":
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):  # size and nlink: see DOCUMENTED
            return (stat.S_IFDIR, stat.S_IMODE(st.st_mode))
        return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size, st.st_nlink)
    os.close(fd)  # close
    side.fds[slot] = None
    return None


def apply_op(side, op):
    """Run op on side's mount; return (0 or the errno, what it returned
    for the fd operations).  ("remount",) is handled by Pair."""
    name, args = op[0], op[1:]
    P = side.P
    try:
        if name in ("open", "fdwrite", "fdread", "fdstat", "close"):
            return 0, fd_op(side, name, args[0], args[1:])
        if name == "create":
            path, mode, excl = args
            fl = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if excl else os.O_TRUNC)
            os.close(os.open(P(path), fl, mode))
        elif name == "write":
            path, offset, length, seed = args
            fd = os.open(P(path), os.O_WRONLY)
            try:
                os.pwrite(fd, data_pattern(seed, length), offset)
            finally:
                os.close(fd)
        elif name == "truncate":
            path, size = args
            os.truncate(P(path), size)
        elif name == "link":
            src, dst = args
            os.link(P(src), P(dst), follow_symlinks=False)
        elif name == "unlink":
            os.unlink(P(args[0]))
        elif name == "rename":
            src, dst, flags = args
            sfs.renameat2(P(src), P(dst), flags)
        elif name == "mkdir":
            path, mode = args
            os.mkdir(P(path), mode)
        elif name == "rmdir":
            os.rmdir(P(args[0]))
        elif name == "chmod":
            path, mode = args
            os.chmod(P(path), mode)
        elif name == "chown":
            path, uid, gid = args
            os.chown(P(path), uid, gid, follow_symlinks=False)
        elif name == "utimes":
            path, atime, mtime = args
            os.utime(P(path), ns=(atime, mtime), follow_symlinks=False)
        elif name == "setxattr":
            path, xname, value = args
            os.setxattr(P(path), xname, value, follow_symlinks=False)
        elif name == "removexattr":
            path, xname = args
            os.removexattr(P(path), xname, follow_symlinks=False)
        elif name == "symlink":
            target, path = args
            os.symlink(target, P(path))
        else:
            raise ValueError("unknown operation %r" % (op,))
    except OSError as e:
        return e.errno, None
    return 0, None


def random_op(rnd):
    """One operation drawn with rnd (a random.Random), as hypothesis would
    draw it in test_differential.py."""
    path = lambda: rnd.choice(PATHS)  # noqa: E731
    name = rnd.choice(OPS + ["write", "write", "rename", "link", "create"])
    if name == "remount" and rnd.random() < 0.7:
        name = "write"  # remounts are slow: rarer than the rest
    if name == "create":
        return (name, path(), rnd.choice(MODES), rnd.random() < 0.5)
    if name == "write":
        return (name, path(), rnd.randrange(MAX_OFFSET), rnd.randrange(MAX_LEN),
                rnd.randrange(256))
    if name == "truncate":
        return (name, path(), rnd.randrange(MAX_SIZE))
    if name in ("link", "rename"):
        extra = (rnd.choice(RENAME_FLAGS),) if name == "rename" else ()
        return (name, path(), path()) + extra
    if name in ("unlink", "rmdir"):
        return (name, path())
    if name in ("mkdir", "chmod"):
        return (name, path(), rnd.choice(MODES))
    if name == "chown":
        return (name, path()) + rnd.choice(OWNERS)
    if name == "utimes":
        return (name, path()) + rnd.choice(TIMES)
    if name == "setxattr":
        return (name, path(), rnd.choice(XATTR_NAMES), rnd.choice(XATTR_VALUES))
    if name == "removexattr":
        return (name, path(), rnd.choice(XATTR_NAMES))
    if name == "symlink":
        return (name, rnd.choice(SYMLINK_TARGETS), path())
    slot = rnd.randrange(FD_SLOTS)
    if name == "open":
        return (name, slot, path(), rnd.choice(OPEN_FLAGS))
    if name == "fdwrite":
        return (name, slot, rnd.randrange(MAX_OFFSET), rnd.randrange(MAX_LEN),
                rnd.randrange(256))
    if name == "fdread":
        return (name, slot, rnd.randrange(MAX_OFFSET), rnd.randrange(MAX_LEN))
    if name in ("fdstat", "close"):
        return (name, slot)
    return ("remount",)


def format_ops(ops):
    return "\n".join("  %3d %r" % (i, op) for i, op in enumerate(ops))


# ---------------------------------------------------------------- views


def mtime_class(ns):
    """An mtime set by utimes, or kept from a shared layer, exactly; any
    other is "now" on both sides, so only that it is new is compared."""
    return ns if ns < OLD else "new"


def user_xattrs(path):
    out = {}
    for n in sorted(os.listxattr(path, follow_symlinks=False)):
        if n.startswith("user."):
            out[n] = os.getxattr(path, n, follow_symlinks=False)
    return out


def view(root):
    """(entries, inos): entries maps each path below root to what a user
    sees of it; inos maps each path to its st_ino."""
    entries, inos = {}, {}

    def visit(rel):
        d = os.path.join(root, rel)
        for ent in sorted(os.scandir(d), key=lambda e: e.name):
            r = os.path.join(rel, ent.name)
            st = os.lstat(ent.path)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid, "mtime": mtime_class(st.st_mtime_ns),
                 "d_type": "dir" if ent.is_dir(follow_symlinks=False) else
                           "lnk" if ent.is_symlink() else
                           "reg" if ent.is_file(follow_symlinks=False) else "other",
                 "xattrs": user_xattrs(ent.path)}
            if stat.S_ISREG(st.st_mode):
                e["size"], e["nlink"] = st.st_size, st.st_nlink
                e["data"] = sfs.read_file(ent.path)
                if len(e["data"]) != st.st_size:
                    e["read_size"] = len(e["data"])
            elif stat.S_ISLNK(st.st_mode):
                e["target"], e["nlink"] = os.readlink(ent.path), st.st_nlink
            entries[r] = e
            inos[r] = st.st_ino
            if stat.S_ISDIR(st.st_mode):
                visit(r)
    visit("")
    return entries, inos


def ino_classes(inos):
    """Which names share an inode: a set of frozensets of paths."""
    by = {}
    for p, i in inos.items():
        by.setdefault(i, set()).add(p)
    return {frozenset(s) for s in by.values()}


def short(v):
    if isinstance(v, bytes) and len(v) > 40:
        return "<%d bytes %s..>" % (len(v), v[:16].hex())
    return repr(v)


def diff_entries(a, b, quirky=lambda p: False, na="scratchfs", nb="kernel"):
    """Differences between the views a (scratchfs) and b (the kernel);
    quirky(path): see documented()."""
    out = []
    for p in sorted(set(a) | set(b)):
        ea, eb = a.get(p), b.get(p)
        if ea is None or eb is None:
            out.append("%s: only in %s" % (p, na if eb is None else nb))
            continue
        for k in sorted(set(ea) | set(eb)):
            if ea.get(k) != eb.get(k) and not documented(k, ea, eb, quirky(p)):
                x, y = ea.get(k), eb.get(k)
                if k == "data" and x is not None and y is not None and len(x) == len(y):
                    first = next(i for i in range(len(x)) if x[i] != y[i])
                    out.append("%s: data differs from offset %d" % (p, first))
                else:
                    out.append("%s: %s %s=%s %s=%s" % (p, k, na, short(x), nb, short(y)))
    return out


# ---------------------------------------------------------------- the pair


class Pair:
    """scratchfs and kernel overlayfs over identical starting layers, in a
    temporary directory; close() unmounts both and removes everything."""

    def __init__(self, extra_args=(), **sfs_opts):
        tmp = os.environ.get("SCRATCHFS_TMPDIR", "/var/tmp")
        self.base = tempfile.mkdtemp(prefix="sfs-diff-", dir=tmp)
        self.sides = []
        self.quirky = set()  # see KERNEL_QUIRKS
        self.last_op = ("start",)
        try:
            self.s = ScratchfsSide(self.base, "scratchfs", extra_args, **sfs_opts)
            self.sides.append(self.s)
            self.k = KernelSide(self.base, "kernel")
            self.sides.append(self.k)
            for side in self.sides:
                side.mount()
            self.differences()  # records the starting st_ino of every name
        except BaseException:
            self.close()
            raise

    def close(self):
        for side in self.sides:
            side.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def remount(self):
        """Unmount and mount both; files held open are closed first (an
        unmount waits for them)."""
        for side in self.sides:
            side.close_fds()
            side.umount()
        for side in self.sides:
            side.mount()

    def step(self, op):
        """Run op on both mounts; return a list of differences (empty when
        they agree)."""
        self.last_op = op
        if op[0] == "remount":
            self.remount()
            out = []
        else:
            (es, rs), (ek, rk) = apply_op(self.s, op), apply_op(self.k, op)
            out = [] if es == ek else ["errno: scratchfs %s, kernel %s" % (
                errno.errorcode.get(es, es) if es else "success",
                errno.errorcode.get(ek, ek) if ek else "success")]
            if rs != rk:
                out.append("result: scratchfs %s, kernel %s" % (short(rs), short(rk)))
        return out + self.differences()

    def differences(self):
        views = {}
        changed = {}
        for side in self.sides:
            entries, inos = view(side.mnt)
            changed[side.name] = {p for p in inos if p in side.prev_ino and
                                  side.prev_ino[p] != inos[p]}
            side.prev_ino = inos
            views[side.name] = (entries, ino_classes(inos))
        (es, cs), (ek, ck) = views["scratchfs"], views["kernel"]
        kino = self.k.prev_ino
        if opens_for_writing(self.last_op):
            self.quirky |= {kino[p] for p, e in ek.items() if p in es and
                            e.get("mtime") == "new" and es[p]["mtime"] != "new"}
        out = diff_entries(es, ek, lambda p: kino.get(p) in self.quirky)
        if cs != ck:
            fmt = lambda c: sorted(sorted(s) for s in c if len(s) > 1)  # noqa: E731
            out.append("names sharing an inode: scratchfs %s, kernel %s" % (fmt(cs), fmt(ck)))
        if changed["scratchfs"] != changed["kernel"]:
            out.append("st_ino changed: scratchfs %s, kernel %s" % (
                sorted(changed["scratchfs"]), sorted(changed["kernel"])))
        return out


def replay(ops, **pair_kw):
    """Run ops on a fresh Pair; return (index of the first step that
    differs, its differences), or (None, [])."""
    pair = Pair(**pair_kw)
    try:
        for i, op in enumerate(ops):
            d = pair.step(op)
            if d:
                return i, d
        return None, []
    finally:
        pair.close()


def shrink(ops, **pair_kw):
    """A shorter sequence that still fails (greedy: drop one operation at a
    time, from the end), for the soak, which does not run under
    hypothesis."""
    i, _ = replay(ops, **pair_kw)
    if i is None:
        return ops
    ops = ops[:i + 1]
    j = len(ops) - 2
    while j >= 0:
        cand = ops[:j] + ops[j + 1:]
        k, _ = replay(cand, **pair_kw)
        if k is not None:
            ops = cand[:k + 1]
            j = min(j, len(ops) - 1)
        j -= 1
    return ops


def kernel_overlay_available():
    if subprocess.run(["grep", "-qw", "overlay", "/proc/filesystems"]).returncode != 0:
        subprocess.run(["modprobe", "overlay"], stderr=subprocess.DEVNULL)
    return subprocess.run(["grep", "-qw", "overlay", "/proc/filesystems"]).returncode == 0
