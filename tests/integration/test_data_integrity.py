"""Data integrity: random pwrite, truncate, mmap writes and reads on files
that start in the shared layer (so the first change copies them up, some
metadata-first), checked against an in-memory model of every file's
contents after each read, after each remount and at the end.  Files stay
open across operations, so writes through one descriptor are read through
another; two names of a shared hardlink are one file in the model.  Runs
under each loop mode (multi-threaded, the default, and -s).

SFS_DATA_SEED (default 12) and SFS_DATA_OPS (default 1200 per mode) change
the run; the seed is printed."""

import mmap
import os
import random
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402

SEED = int(os.environ.get("SFS_DATA_SEED", "12"))
NOPS = int(os.environ.get("SFS_DATA_OPS", "1200"))
# name -> starting size; "big" is larger than one FUSE request, "empty" is 0
FILES = {"empty": 0, "one": 1, "page": 4096, "odd": 3 * 4096 + 17,
         "big": 300000, "dir/deep": 70000, "hl1": 9000}
ALIASES = {"hl2": "hl1"}  # a second shared name of hl1
MAX_FILE = 400000
PAGE = mmap.PAGESIZE


class Model:
    """What each file must contain: bytearrays, shared between the names
    of one file."""

    def __init__(self, rnd):
        self.data = {n: bytearray(rnd.randbytes(size)) for n, size in FILES.items()}
        for alias, name in ALIASES.items():
            self.data[alias] = self.data[name]

    def names(self):
        return sorted(self.data)

    def write(self, name, off, buf):
        d = self.data[name]
        if off > len(d):
            d.extend(bytes(off - len(d)))
        d[off:off + len(buf)] = buf

    def truncate(self, name, size):
        d = self.data[name]
        if size < len(d):
            del d[size:]
        else:
            d.extend(bytes(size - len(d)))


class Run:
    def __init__(self, test, mount, rnd):
        self.t, self.m, self.rnd = test, mount, rnd
        self.model = Model(rnd)
        self.fds = {}  # name -> O_RDWR fd kept open across operations
        self.log = []

    def P(self, name):
        return self.m.M(name)

    def fd(self, name):
        """A descriptor kept open, or a fresh one (closed by the caller
        when fresh)."""
        if name in self.fds and self.rnd.random() < 0.7:
            return self.fds[name], False
        return os.open(self.P(name), os.O_RDWR), True

    def fail(self, what):
        self.t.fail("%s\nseed %d, last operations:\n  %s" % (
            what, SEED, "\n  ".join(self.log[-15:])))

    def expect(self, name, off, got):
        want = bytes(self.model.data[name][off:off + len(got)])
        if len(got) != min(len(want), len(got)) or got != want:
            first = next((i for i in range(min(len(got), len(want)))
                          if got[i] != want[i]), min(len(got), len(want)))
            self.fail("%s: %d bytes read at %d differ from the model from byte %d "
                      "(model size %d)" % (name, len(got), off, off + first,
                                           len(self.model.data[name])))

    # -- operations
    def op_pwrite(self, name):
        size = len(self.model.data[name])
        off = self.rnd.randrange(min(size + 65536, MAX_FILE))
        buf = self.rnd.randbytes(self.rnd.randrange(1, 70000))
        fd, fresh = self.fd(name)
        try:
            n = os.pwrite(fd, buf, off)
        finally:
            if fresh:
                os.close(fd)
        if n != len(buf):
            self.fail("%s: short write %d of %d" % (name, n, len(buf)))
        self.model.write(name, off, buf)
        return "pwrite %s %d+%d" % (name, off, len(buf))

    def op_truncate(self, name):
        size = self.rnd.choice([0, self.rnd.randrange(MAX_FILE),
                                self.rnd.randrange(len(self.model.data[name]) + 1)])
        if self.rnd.random() < 0.5:
            os.truncate(self.P(name), size)
        else:
            fd, fresh = self.fd(name)
            os.ftruncate(fd, size)
            if fresh:
                os.close(fd)
        self.model.truncate(name, size)
        return "truncate %s %d" % (name, size)

    def op_mmap_write(self, name):
        size = len(self.model.data[name])
        if size == 0:
            return self.op_truncate(name)
        off = self.rnd.randrange(size)
        buf = self.rnd.randbytes(self.rnd.randrange(1, min(size - off, 3 * PAGE) + 1))
        fd = os.open(self.P(name), os.O_RDWR)
        try:
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
                mm[off:off + len(buf)] = buf
                if self.rnd.random() < 0.5:
                    mm.flush()
        finally:
            os.close(fd)
        self.model.write(name, off, buf)
        return "mmap write %s %d+%d" % (name, off, len(buf))

    def op_mmap_read(self, name):
        size = len(self.model.data[name])
        if size == 0:
            return "mmap read %s (empty)" % name
        fd = os.open(self.P(name), os.O_RDONLY)
        try:
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as mm:
                off = self.rnd.randrange(size)
                got = mm[off:off + self.rnd.randrange(1, 20000)]
        finally:
            os.close(fd)
        self.expect(name, off, got)
        return "mmap read %s %d+%d" % (name, off, len(got))

    def op_pread(self, name):
        size = len(self.model.data[name])
        off = self.rnd.randrange(size + 100)
        fd, fresh = self.fd(name)
        try:
            got = os.pread(fd, self.rnd.randrange(1, 100000), off)
        finally:
            if fresh:
                os.close(fd)
        self.expect(name, off, got)
        return "pread %s %d+%d" % (name, off, len(got))

    def op_keep_open(self, name):
        if name in self.fds:
            os.close(self.fds.pop(name))
            return "close %s" % name
        self.fds[name] = os.open(self.P(name), os.O_RDWR)
        return "keep %s open" % name

    def op_remount(self, name):
        self.close_all()
        self.m.remount()
        self.check_all("after remount")
        return "remount"

    # -- checks
    def close_all(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def check_all(self, when):
        for name in self.model.names():
            got = sfs.read_file(self.P(name))
            want = bytes(self.model.data[name])
            st = os.stat(self.P(name))
            if got != want or st.st_size != len(want):
                self.fail("%s %s: size %d (st_size %d), model %d, contents %s" % (
                    name, when, len(got), st.st_size, len(want),
                    "equal" if got == want else "differ"))

    def run(self, nops):
        ops = [self.op_pwrite] * 4 + [self.op_truncate, self.op_mmap_write] * 2 + \
            [self.op_mmap_read, self.op_pread, self.op_pread, self.op_keep_open]
        for i in range(nops):
            name = self.rnd.choice(self.model.names())
            op = self.op_remount if self.rnd.random() < 0.004 else self.rnd.choice(ops)
            self.log.append("%d: %s" % (i, op(name)))
        self.close_all()
        self.check_all("at the end")
        self.m.remount()
        self.check_all("after the last remount")


class DataIntegrityTest(sfs.TestCase):

    def build_lower(self):
        model = Model(random.Random(SEED))  # the bytes Run's model starts with
        for name in FILES:
            sfs.write_file(self.layers.L(name), bytes(model.data[name]))
        for alias, name in ALIASES.items():
            os.link(self.layers.L(name), self.layers.L(alias))

    def run_mode(self, **mount_kw):
        print("seed %d, %d operations" % (SEED, NOPS))
        self.build_lower()
        m = self.mount(**mount_kw)
        Run(self, m, random.Random(SEED)).run(NOPS)
        # hl1 and hl2 are still one file
        self.assertEqual(os.stat(m.M("hl1")).st_ino, os.stat(m.M("hl2")).st_ino)
        self.assertEqual(os.stat(m.M("hl1")).st_nlink, 2)

    def test_multithread(self):
        self.run_mode()

    def test_single_thread(self):
        self.run_mode(extra_args=["-s"])


if __name__ == "__main__":
    sfs.require_environment()
    # Mounts in a namespace of their own: a namespace another test creates
    # meanwhile would copy them, and an unmount here would then leave the
    # daemon serving that copy.
    sfs.enter_private_namespace()
    sfs.main()
