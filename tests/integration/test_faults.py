"""Nothing lost under faults (issue 12, item 1): every syscall scratchfs
makes on the local layer during an operation is failed in turn with ENOSPC
and with EIO, by an LD_PRELOAD shim (tests/faults/faultshim.c).

ENOSPC fails the calls that change the local layer (WRITE_CALLS); EIO the
calls that read it (READ_CALLS: a check that fails must answer with the
error, never "no").  For each operation of OPS and each step k of it:
  - a reference run without faults gives the number of steps and the view
    after the operation;
  - run k fails the k-th call: the caller gets the injected error (or the
    operation succeeded, having survived a failure it may ignore), and the
    mount shows exactly the view before or the view after the operation:
    names, types, modes, owners, sizes, contents, link counts (but of
    directories), user xattrs and
    which names share an st_ino (and that pre-existing ones keep theirs);
  - workdir/work is empty right after the failure and after the next
    mount, which shows the same view again;
  - the shared layer is unchanged (the harness digests it at unmount);
  - then, without faults, the same operation succeeds and shows the view
    after.
A step whose calls up to and including the failed one are those of a step
already failed for another operation with the same setup (the copy-up of
a shared file, the same for link, chmod, setxattr...) runs the same code
in the same state and is not run again; and EIO on reads is stepped
through for the operations that read markers (EIO_OPS), ENOSPC for all.
SFS_FAULTS_ALL=1 (make check-faults-all) runs every step of everything.

Plus a local layer on a real ext4 (loop device; tmpfs where there is
none) filled to within a few blocks.
"""

import errno
import mmap
import os
import stat
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# --------------------------------------------------------------- the shim

CTL_SIZE = 4096
CTL_MAGIC = 0x5346534641554c54
OFF_MAGIC, OFF_ARMED, OFF_DEV, OFF_NTH, OFF_ERR, OFF_MASK, OFF_COUNT, \
    OFF_FIRED, OFF_NCALLS = range(0, 72, 8)
OFF_LOG, LOG_MAX, NAME_LEN = 128, 1024, 24

# Calls that can meet a full or failing disk when scratchfs changes the
# local layer.
WRITE_CALLS = ("openat", "open", "mkdirat", "mknodat", "symlinkat", "linkat",
               "unlinkat", "renameat", "renameat2", "setxattr", "lsetxattr",
               "fsetxattr", "removexattr", "fremovexattr", "pwrite", "write",
               "copy_file_range", "ficlone", "fchownat", "fchmodat",
               "utimensat", "futimens", "fsync", "fdatasync", "ftruncate",
               "fallocate")
# A failing disk also fails reads: checks (is it a whiteout, opaque, a
# metadata copy?) must answer with the error, never with "no".
READ_CALLS = ("fstatat", "getxattr", "lgetxattr", "open_by_handle_at")


def fault_library():
    """The shim built by `make check`, else built here with cc."""
    lib = os.environ.get("SFS_FAULT_LIB")
    if lib and os.path.exists(lib):
        return lib
    src = os.path.join(HERE, "..", "faults", "faultshim.c")
    out = os.path.join(tempfile.mkdtemp(prefix="sfs-shim-"), "libsfsfault.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out, src, "-ldl"],
                   check=True)
    return out


def asan_runtime(binary):
    """The ASan runtime the daemon links, if any: it must come first in
    LD_PRELOAD, before the shim."""
    p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, text=True)
    for line in p.stdout.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libasan") and len(parts) >= 3:
            return parts[2]
    return None


class Shim:
    """The control file shared with the daemon's copy of the shim."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "fault-ctl")
        with open(self.path, "wb") as f:
            f.write(b"\0" * CTL_SIZE)
        self.fd = os.open(self.path, os.O_RDWR)
        self.map = mmap.mmap(self.fd, CTL_SIZE)
        self.names = None

    def env(self):
        preload = [fault_library()]
        asan = asan_runtime(sfs.binary())
        if asan:
            preload.insert(0, asan)
        opts = os.environ.get("ASAN_OPTIONS", "")
        return {"LD_PRELOAD": " ".join(preload), "SFS_FAULT_CTL": self.path,
                "ASAN_OPTIONS": (opts + ":" if opts else "") +
                "verify_asan_link_order=0"}

    def get(self, off):
        return struct.unpack_from("<q", self.map, off)[0]

    def put(self, off, v):
        struct.pack_into("<q", self.map, off, v)

    def call_names(self):
        if self.names is None:
            if self.get(OFF_MAGIC) != CTL_MAGIC:
                raise AssertionError("the fault shim did not load into the daemon")
            n = self.get(OFF_NCALLS)
            base = OFF_LOG + LOG_MAX
            self.names = [self.map[base + i * NAME_LEN: base + (i + 1) * NAME_LEN]
                          .split(b"\0")[0].decode() for i in range(n)]
        return self.names

    def arm(self, dev, nth, err, calls):
        names = self.call_names()
        mask = 0
        for c in calls:
            mask |= 1 << names.index(c)
        self.put(OFF_ARMED, 0)
        for off, v in ((OFF_DEV, dev), (OFF_NTH, nth), (OFF_ERR, err),
                       (OFF_MASK, mask), (OFF_COUNT, 0), (OFF_FIRED, 0)):
            self.put(off, v)
        self.put(OFF_ARMED, 1)

    def disarm(self):
        """(name of the failed call or None, [names of the counted calls])"""
        self.put(OFF_ARMED, 0)
        names = self.call_names()
        count = min(self.get(OFF_COUNT), LOG_MAX)
        log = [names[b] for b in self.map[OFF_LOG:OFF_LOG + count]]
        fired = self.get(OFF_FIRED)
        return (names[fired - 1] if fired else None), log

    def close(self):
        self.map.close()
        os.close(self.fd)


# --------------------------------------------------------------- the view


def view(root):
    """What a user sees below root, comparable between runs: inode numbers
    become classes named by the first path that has them."""
    raw = {}
    for rel in sfs.walk(root):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        d = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
             "uid": st.st_uid, "gid": st.st_gid}
        # A merged directory's link count is the local or the shared
        # one, whichever exists (overlayfs says 1): not compared.
        if not stat.S_ISDIR(st.st_mode):
            d["nlink"] = st.st_nlink
        if stat.S_ISREG(st.st_mode):
            d["size"] = st.st_size
            d["data"] = sfs.read_file(p)
        elif stat.S_ISLNK(st.st_mode):
            d["target"] = os.readlink(p)
        if not stat.S_ISLNK(st.st_mode):
            d["xattrs"] = {k: v for k, v in sfs.xattrs_of(p).items()
                           if k.startswith("user.")}
        raw[rel] = (d, st.st_ino)
    return raw


def normalize(raw, before_raw):
    """Replace st_ino by its class: ("old", first path before) for numbers
    the view before had, ("new", first path now) otherwise."""
    old = {}
    for rel in sorted(before_raw):
        old.setdefault(before_raw[rel][1], rel)
    new = {}
    for rel in sorted(raw):
        new.setdefault(raw[rel][1], rel)
    out = {}
    for rel, (d, ino) in raw.items():
        d = dict(d)
        d["ino"] = ("old", old[ino]) if ino in old else ("new", new[ino])
        out[rel] = d
    return out


def describe(a, b, na, nb):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            da, db = a.get(k), b.get(k)
            if da and db:
                fields = sorted(f for f in set(da) | set(db) if da.get(f) != db.get(f))
                lines.append("    %s: %s" % (k, ", ".join(
                    "%s %s=%r %s=%r" % (f, na, da.get(f), nb, db.get(f)) for f in fields)))
            else:
                lines.append("    %s: %s=%s %s=%s" % (k, na, "present" if da else "absent",
                                                      nb, "present" if db else "absent"))
    return "\n".join(lines[:12])


# --------------------------------------------------------------- the ops

DATA_F = b"shared file f\n" * 4000   # 56 kB: copy-up copies real data
DATA_G = b"shared g\n"
DATA_H = b"shared hardlink\n" * 100


def make_lower(L):
    write_file(L("d/f"), DATA_F, mode=0o644)
    write_file(L("d/g"), DATA_G, mode=0o644)
    write_file(L("d/h1"), DATA_H, mode=0o644)
    os.link(L("d/h1"), L("d/h2"))
    write_file(L("d/sub/x"), b"x\n")
    os.symlink("x", L("d/sub/lnk"))
    write_file(L("d/gone/z"), b"z\n")
    write_file(L("d/gone/w"), b"w\n")
    write_file(L("e/a"), b"a\n")
    write_file(L("top"), b"top\n")


def nothing(m):
    pass


def local_d(m):
    """d has a local directory already: its copy-up, the same for every
    operation below it, is failed step by step in `create` and
    `mkdir_merged` only."""
    os.chmod(m.M("d"), 0o755)


def empty_gone(m):
    """d/gone is empty in the mount, full of whiteouts locally."""
    local_d(m)
    os.unlink(m.M("d/gone/z"))
    os.unlink(m.M("d/gone/w"))


def unlinked_g(m):
    local_d(m)
    os.unlink(m.M("d/g"))


def local_state(m):
    """Copied-up, metadata-only, hardlinked and opaque objects, then a
    remount so that looking them up reads what marks them."""
    os.chmod(m.M("d/g"), 0o600)                  # metadata copy, own st_ino
    os.link(m.M("d/h1"), m.M("d/h-local"))       # indexed hardlink
    for n in ("x", "lnk"):
        os.unlink(m.M("d/sub", n))
    os.rmdir(m.M("d/sub"))
    os.mkdir(m.M("d/sub"))                       # opaque over the shared one
    os.unlink(m.M("d/gone/z"))                   # whiteout in a merged dir
    return "cold"  # remounted after the view before: nothing cached


def op_lookups(m):
    """Read-only: each answer is right or an error, never a guess."""
    for p in ("d/g", "d/h-local", "d/h2", "d/sub", "d/gone", "d/gone/w"):
        os.lstat(m.M(p))
    if os.listdir(m.M("d/sub")):
        raise AssertionError("the opaque d/sub shows shared names")
    if os.path.exists(m.M("d/gone/z")):
        raise AssertionError("deleted d/gone/z is back")
    sfs.read_file(m.M("d/g"))


def op_create(m):
    os.close(os.open(m.M("d/new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640))


def op_write(m):
    fd = os.open(m.M("d/f"), os.O_WRONLY)
    try:
        os.pwrite(fd, b"NEW", 100)
    finally:
        os.close(fd)


# name, setup, operation
OPS = [
    ("lookups", local_state, op_lookups),
    ("create", nothing, op_create),
    ("mkdir_merged", nothing, lambda m: os.mkdir(m.M("d/newdir"))),
    ("write_shared", local_d, op_write),
    ("link_shared", local_d, lambda m: os.link(m.M("d/f"), m.M("d/f-link"))),
    ("link_shared_hardlink", local_d, lambda m: os.link(m.M("d/h1"), m.M("d/h3"))),
    ("chmod_shared", local_d, lambda m: os.chmod(m.M("d/g"), 0o600)),
    ("setxattr_shared", local_d,
     lambda m: os.setxattr(m.M("d/g"), "user.test", b"v")),
    ("unlink_shared", local_d, lambda m: os.unlink(m.M("d/g"))),
    ("unlink_shared_hardlink", local_d, lambda m: os.unlink(m.M("d/h1"))),
    ("rmdir_over_whiteouts", empty_gone, lambda m: os.rmdir(m.M("d/gone"))),
    ("rename_over_shared", local_d, lambda m: os.rename(m.M("d/f"), m.M("d/g"))),
    ("rename_shared_dir", local_d,
     lambda m: os.rename(m.M("d/sub"), m.M("d/sub2"))),
    ("rename_dir_over_whiteouts", empty_gone,
     lambda m: os.rename(m.M("e"), m.M("d/gone"))),
    ("mkdir_over_whiteout", unlinked_g, lambda m: os.mkdir(m.M("d/g"))),
]


def work_leftovers(layers):
    return sorted(os.listdir(os.path.join(layers.work, "work")))


class FaultRun:
    """One fresh set of layers and one mount under the shim."""

    def __init__(self, test, setup):
        self.layers = sfs.Layers(upper_size="64m")
        test.addCleanup(self.layers.cleanup)
        make_lower(self.layers.L)
        self.shim = Shim(self.layers.base)
        test.addCleanup(self.shim.close)
        self.m = sfs.Mount(self.layers, env=self.shim.env())
        self.m.start()
        test.addCleanup(self._stop)
        cold = setup(self.m) == "cold"
        self.before = view(self.m.mnt)
        if cold:
            self.m.remount()
        self.dev = os.stat(self.layers.upper).st_dev

    def _stop(self):
        if self.m.proc is not None:
            self.m.umount(check=False)

    def run(self, op, nth, err, calls):
        self.shim.arm(self.dev, nth, err, calls)
        e = sfs.errno_of(op, self.m)
        fired, log = self.shim.disarm()
        return e, fired, log

    def shown(self):
        return normalize(view(self.m.mnt), self.before)


# (errno, setup, calls up to the failed one) of the steps already run.
DONE_STEPS = set()


class FaultTest(sfs.TestCase):
    """Every operation of OPS, every step failed in turn (each run on
    layers of its own)."""

    def reference(self, name, setup, op, calls):
        """Steps and the view after, from a run without faults."""
        r = FaultRun(self, setup)
        e, fired, log = r.run(op, 0, 0, calls)
        self.assertEqual(e, 0, "%s without faults failed: %s\n%s" % (
            name, os.strerror(e), r.m.output()))
        after = r.shown()
        r.m.umount()
        return log, after

    def one_step(self, name, setup, op, calls, k, err, after):
        """Fail the k-th call; return a list of problems."""
        r = FaultRun(self, setup)
        before = normalize(r.before, r.before)
        e, fired, log = r.run(op, k, err, calls)
        where = "%s, %s at step %d (%s)" % (name, errno.errorcode[err], k, fired)
        if fired is None:
            return []  # fewer steps this time (a cache answered)
        problems = []
        shown = r.shown()
        if e not in (0, err):
            problems.append("%s: caller got %s" % (where, errno.errorcode.get(e, e)))
        if e == 0 and shown != after:
            problems.append("%s: succeeded but shows\n%s" % (
                where, describe(shown, after, "shown", "after")))
        elif shown not in (before, after):
            problems.append("%s: shows neither before nor after:\n%s\n  vs after:\n%s" % (
                where, describe(shown, before, "shown", "before"),
                describe(shown, after, "shown", "after")))
        # What a failed cleanup (after the commit, or a removal) leaves
        # is the next mount's; a failed operation leaves nothing else.
        left = work_leftovers(r.layers)
        if left and e != 0 and fired != "unlinkat":
            problems.append("%s: leftovers in workdir/work: %s" % (where, left))
        try:
            r.m.remount()
        except AssertionError as ex:  # the shared layer changed, or no exit 0
            return problems + ["%s: %s" % (where, str(ex).splitlines()[0])]
        again = r.shown()
        if again != shown:
            problems.append("%s: after remount shows\n%s" % (
                where, describe(again, shown, "remounted", "shown")))
        left = work_leftovers(r.layers)
        if left:
            problems.append("%s: leftovers after remount: %s" % (where, left))
        if again == before and shown == before:
            e2 = sfs.errno_of(op, r.m)
            if e2 != 0 or r.shown() != after:
                problems.append("%s: without faults the retry gives %s\n%s" % (
                    where, errno.errorcode.get(e2, "success"),
                    describe(r.shown(), after, "shown", "after")))
        try:
            r.m.umount()
        except AssertionError as ex:
            problems.append("%s: %s" % (where, str(ex).splitlines()[0]))
        return problems

    def every_step(self, name, setup, op, err, calls):
        log, after = self.reference(name, setup, op, calls)
        self.assertTrue(log, "%s: the shim counted no call on the local layer" % name)
        problems = []
        for k in range(1, len(log) + 1):
            key = (err, setup.__name__, tuple(log[:k]))
            if key in DONE_STEPS and not os.environ.get("SFS_FAULTS_ALL"):
                continue
            DONE_STEPS.add(key)
            problems += self.one_step(name, setup, op, calls, k, err, after)
        if problems:
            self.fail("%d of %d steps (%s) went wrong:\n%s" % (
                len(problems), len(log), " ".join(log), "\n".join(problems)))


# Operations whose outcome depends on reading markers back (whiteouts,
# opaque, metacopy, origin inode, index counts): EIO on every read step.
EIO_OPS = {"lookups", "mkdir_merged", "link_shared_hardlink", "unlink_shared_hardlink",
           "rmdir_over_whiteouts", "rename_over_shared", "rename_dir_over_whiteouts",
           "mkdir_over_whiteout"}


def _add(name, setup, op):
    def t_enospc(self):
        self.every_step(name, setup, op, errno.ENOSPC, WRITE_CALLS)

    def t_eio(self):
        self.every_step(name, setup, op, errno.EIO, READ_CALLS)
    setattr(FaultTest, "test_enospc_" + name, t_enospc)
    if name in EIO_OPS or os.environ.get("SFS_FAULTS_ALL"):
        setattr(FaultTest, "test_eio_" + name, t_eio)


for _name, _setup, _op in OPS:
    _add(_name, _setup, _op)


# ------------------------------------------------------ a real full disk


def small_ext4(layers, size_kb=4096):
    """Put upper and work on a fresh loop-mounted ext4 of size_kb (1 kB
    blocks, no reserved blocks); tmpfs if loop devices are unavailable."""
    img = os.path.join(layers.base, "upper.img")
    d = os.path.join(layers.base, "upperfs")
    os.makedirs(d)
    with open(img, "wb") as f:
        f.truncate(size_kb * 1024)
    ok = subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "1024", "-m", "0", img],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    ok = ok and subprocess.run(["mount", "-o", "loop", img, d], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode == 0
    if not ok:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size_kb, "tmpfs", d],
                       check=True)
    layers.fs_mounts.append(d)
    for sub in ("upper", "work"):
        p = os.path.join(d, sub)
        os.makedirs(p)
        setattr(layers, sub, p)
    return d


def fill_to(fsdir, keep_blocks):
    """Fill the filesystem at fsdir until keep_blocks blocks stay free."""
    filler = os.path.join(fsdir, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = b"f" * 65536
        while True:
            try:
                os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1024:
                    break
                chunk = chunk[:len(chunk) // 2]
        os.fsync(fd)
        st = os.statvfs(fsdir)
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - keep_blocks * st.f_frsize))
        os.fsync(fd)
    finally:
        os.close(fd)
    return filler


class MetacopyDataGoneTest(sfs.TestCase):
    """A metadata-only copy whose shared data was removed reads EIO (as
    on overlayfs), with one log line; stat, chmod and unlink still work."""

    def test_reads_eio(self):
        write_file(self.layers.L("f"), b"shared data\n")
        m = self.mount(check_lower=False)
        os.chmod(m.M("f"), 0o600)
        self.assertIn("trusted.overlay.metacopy", os.listxattr(self.layers.U("f")))
        m.umount()
        os.unlink(self.layers.L("f"))
        m = self.mount(check_lower=False)
        self.assertEqual(os.stat(m.M("f")).st_size, len(b"shared data\n"))
        self.assertErrno(errno.EIO, sfs.read_file, m.M("f"))
        self.assertErrno(errno.EIO, os.open, m.M("f"), os.O_WRONLY)
        self.assertErrno(errno.EIO, os.open, m.M("f"), os.O_RDONLY)
        os.chmod(m.M("f"), 0o644)
        os.unlink(m.M("f"))
        self.assertFalse(os.path.exists(m.M("f")))
        self.assertEqual(len([x for x in m.output().splitlines()
                              if "lost its shared data" in x]), 1, m.output())


class FullDiskTest(sfs.TestCase):
    """The local layer on a small real filesystem filled to within a few
    blocks: each operation either succeeds or fails with ENOSPC showing
    the view before; once space is freed it succeeds."""

    def one(self, name, setup, op, keep):
        layers = sfs.Layers()
        self.addCleanup(layers.cleanup)
        make_lower(layers.L)
        fsdir = small_ext4(layers)
        m = sfs.Mount(layers)
        m.start()
        self.addCleanup(lambda: m.proc is not None and m.umount(check=False))
        setup(m)
        before_raw = view(m.mnt)
        before = normalize(before_raw, before_raw)
        filler = fill_to(fsdir, keep)
        e = sfs.errno_of(op, m)
        shown = normalize(view(m.mnt), before_raw)
        os.unlink(filler)
        problems = []
        where = "%s with %d blocks free" % (name, keep)
        if e not in (0, errno.ENOSPC):
            problems.append("%s: caller got %s" % (where, errno.errorcode.get(e, e)))
        if e == 0:
            after = shown
        else:
            if shown != before:
                problems.append("%s: failed, and shows\n%s" % (
                    where, describe(shown, before, "shown", "before")))
            e2 = sfs.errno_of(op, m)
            if e2:
                problems.append("%s: with space again: %s" % (where, os.strerror(e2)))
            after = normalize(view(m.mnt), before_raw)
        m.remount()
        again = normalize(view(m.mnt), before_raw)
        if again != after:
            problems.append("%s: after remount shows\n%s" % (
                where, describe(again, after, "remounted", "before unmount")))
        if work_leftovers(layers):
            problems.append("%s: leftovers %s" % (where, work_leftovers(layers)))
        m.umount()
        return problems, e

    def test_every_op_on_a_full_disk(self):
        problems = []
        failed = 0
        for name, setup, op in OPS:
            for keep in (0, 3):
                p, e = self.one(name, setup, op, keep)
                problems += p
                failed += e == errno.ENOSPC
        self.assertFalse(problems, "\n".join(problems))
        # The disk was full enough to matter.
        self.assertGreater(failed, 0, "no operation met ENOSPC")


if __name__ == "__main__":
    # About 200 mounts, each failing one step: more than the default
    # budget of a test file on a loaded machine.
    os.environ.setdefault("SFS_TIMEOUT", "900")
    sfs.main()
