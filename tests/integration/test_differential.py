"""Random sequences of operations on scratchfs and on kernel overlayfs
(index=on,redirect_dir=on,metacopy=on) over identical starting layers must
give the same errno and leave the same view after every step (difftest.py
says what is compared, and what differs on purpose).

The run is python3-hypothesis stateful testing with a fixed seed
(derandomize): a failure shrinks to a minimal sequence, printed as the
rule calls that reproduce it.  SFS_DIFF_EXAMPLES (default 60) sequences of
up to SFS_DIFF_STEPS (default 50) operations; `make soak` runs the long
version (soak_differential.py).  Sequences it found once, fixed in src/,
are replayed by RecordedSequences."""

import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402

try:
    import hypothesis  # noqa: F401
except ImportError:
    # Debian's python3-hypothesis is installed for /usr/bin/python3, which
    # need not be the python3 first in PATH.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("FAIL: python3-hypothesis is not installed (apt install python3-hypothesis)")
    sys.exit(1)

from hypothesis import HealthCheck, settings, strategies as st  # noqa: E402
from hypothesis.stateful import (RuleBasedStateMachine, rule,  # noqa: E402
                                 run_state_machine_as_test)

import difftest as dt  # noqa: E402

EXAMPLES = int(os.environ.get("SFS_DIFF_EXAMPLES", "60"))
STEPS = int(os.environ.get("SFS_DIFF_STEPS", "50"))

paths = st.sampled_from(dt.PATHS)
modes = st.sampled_from(dt.MODES)
slots = st.integers(0, dt.FD_SLOTS - 1)
offsets = st.integers(0, dt.MAX_OFFSET)
lengths = st.integers(0, dt.MAX_LEN)
seeds = st.integers(0, 255)


class Differential(RuleBasedStateMachine):
    """One rule per operation of difftest.OPS; each runs on both mounts and
    fails on the first difference."""

    def __init__(self):
        super().__init__()
        self.pair = dt.Pair()

    def teardown(self):
        self.pair.close()

    def check(self, *op):
        d = self.pair.step(op)
        assert not d, "after %r:\n  %s" % (op, "\n  ".join(d))

    @rule(path=paths, mode=modes, excl=st.booleans())
    def create(self, path, mode, excl):
        self.check("create", path, mode, excl)

    @rule(path=paths, offset=offsets, length=lengths, seed=seeds)
    def write(self, path, offset, length, seed):
        self.check("write", path, offset, length, seed)

    @rule(path=paths, size=st.integers(0, dt.MAX_SIZE))
    def truncate(self, path, size):
        self.check("truncate", path, size)

    @rule(src=paths, dst=paths)
    def link(self, src, dst):
        self.check("link", src, dst)

    @rule(path=paths)
    def unlink(self, path):
        self.check("unlink", path)

    @rule(src=paths, dst=paths, flags=st.sampled_from(dt.RENAME_FLAGS))
    def rename(self, src, dst, flags):
        self.check("rename", src, dst, flags)

    @rule(path=paths, mode=modes)
    def mkdir(self, path, mode):
        self.check("mkdir", path, mode)

    @rule(path=paths)
    def rmdir(self, path):
        self.check("rmdir", path)

    @rule(path=paths, mode=modes)
    def chmod(self, path, mode):
        self.check("chmod", path, mode)

    @rule(path=paths, owner=st.sampled_from(dt.OWNERS))
    def chown(self, path, owner):
        self.check("chown", path, *owner)

    @rule(path=paths, times=st.sampled_from(dt.TIMES))
    def utimes(self, path, times):
        self.check("utimes", path, *times)

    @rule(path=paths, name=st.sampled_from(dt.XATTR_NAMES),
          value=st.sampled_from(dt.XATTR_VALUES))
    def setxattr(self, path, name, value):
        self.check("setxattr", path, name, value)

    @rule(path=paths, name=st.sampled_from(dt.XATTR_NAMES))
    def removexattr(self, path, name):
        self.check("removexattr", path, name)

    @rule(dest=st.sampled_from(dt.SYMLINK_TARGETS), path=paths)
    def symlink(self, dest, path):
        self.check("symlink", dest, path)

    @rule(slot=slots, path=paths, flags=st.sampled_from(dt.OPEN_FLAGS))
    def open(self, slot, path, flags):
        self.check("open", slot, path, flags)

    @rule(slot=slots, offset=offsets, length=lengths, seed=seeds)
    def fdwrite(self, slot, offset, length, seed):
        self.check("fdwrite", slot, offset, length, seed)

    @rule(slot=slots, offset=offsets, length=lengths)
    def fdread(self, slot, offset, length):
        self.check("fdread", slot, offset, length)

    @rule(slot=slots)
    def fdstat(self, slot):
        self.check("fdstat", slot)

    @rule(slot=slots)
    def close(self, slot):
        self.check("close", slot)

    @rule()
    def remount(self):
        self.check("remount")


class DifferentialTest(unittest.TestCase):

    def test_random_operations(self):
        run_state_machine_as_test(Differential, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True,
            database=None, deadline=None, print_blob=False,
            suppress_health_check=list(HealthCheck)))


class RecordedSequences(unittest.TestCase):
    """Minimal sequences the tester found, each fixed in src/."""

    def replay(self, *ops):
        i, d = dt.replay(list(ops))
        self.assertIsNone(i, "step %s %r:\n  %s" % (i, ops[i] if i is not None else None,
                                                     "\n  ".join(d)))

    def test_rename_noreplace_onto_deleted_shared_name(self):
        """A shared name the user deleted is free: RENAME_NOREPLACE of a
        shared file onto it succeeds (was EEXIST: the whiteout was in the
        way of RENAME_WHITEOUT|RENAME_NOREPLACE)."""
        self.replay(("unlink", "d1/h"), ("rename", "a", "d1/h", sfs.RENAME_NOREPLACE))

    def test_rename_dir_holding_shared_hardlink(self):
        """A shared directory renamed (copied up as a tree) keeps a file
        whose other hardlinked names were looked up first (d2/b is h):
        the file was copied up under its other name only, and the
        directory, now opaque, lost it."""
        self.replay(("rename", "d2", "x", 0))
        self.replay(("mkdir", "d1/s/h", 0o755),
                    ("rename", "d2", "d1/s/h", sfs.RENAME_EXCHANGE))

    def test_create_over_deleted_name_in_setgid_dir(self):
        """A name deleted in a set-group-ID directory and created again
        gets the directory's group (and a directory the bit), as any new
        name there: it was built in workdir, and kept root's group (found
        by make soak)."""
        setgid_dir = [("chown", "d1", 65534, 65534), ("chmod", "d1", 0o2775)]
        self.replay(*setgid_dir, ("unlink", "d1/a"), ("create", "d1/a", 0o444, True))
        self.replay(*setgid_dir, ("unlink", "d1/a"), ("mkdir", "d1/a", 0o755))
        self.replay(*setgid_dir, ("unlink", "d1/b"), ("create", "d1/b", 0o4755, False))
        self.replay(*setgid_dir, ("unlink", "d1/l"), ("symlink", "a", "d1/l"))
        # a link over a deleted name keeps the linked file's group
        self.replay(*setgid_dir, ("unlink", "d1/h"), ("link", "a", "d1/h"))


if __name__ == "__main__":
    if sfs.is_kernel():
        print("this file compares scratchfs with the kernel: SCRATCHFS_BIN=kernel-overlay makes no sense")
        sys.exit(sfs.SKIP)
    sfs.require_environment()
    sfs.enter_private_namespace()
    if not dt.kernel_overlay_available():
        print("FAIL: the kernel has no overlay filesystem (modprobe overlay)")
        sys.exit(1)
    sfs.main()
