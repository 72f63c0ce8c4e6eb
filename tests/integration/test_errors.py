"""Errors reach the caller as the right errno (design invariant 6): ENOSPC
from a full local layer, also during copy-up (which then leaves the old
view and no leftovers), and EROFS on a read-only mount."""

import errno
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

MB = 1 << 20


def fill(path, nbytes):
    """Write nbytes; return the errno that stopped it (0 if none)."""
    try:
        with open(path, "wb") as f:
            left = nbytes
            while left:
                n = min(left, MB)
                f.write(b"z" * n)
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return e.errno
    return 0


class NoSpaceTest(sfs.TestCase):
    UPPER_SIZE = "6m"

    def setUp(self):
        super().setUp()
        self.big = os.urandom(10 * MB)
        write_file(self.layers.L("big"), self.big)
        write_file(self.layers.L("small"), b"small")

    def free(self):
        st = os.statvfs(self.layers.upper)
        return st.f_bavail * st.f_frsize

    def test_enospc_on_write(self):
        m = self.mount()
        free0 = self.free()
        self.assertEqual(fill(m.M("huge"), 12 * MB), errno.ENOSPC)
        os.unlink(m.M("huge"))
        self.assertGreaterEqual(self.free(), free0 - 64 * 1024)
        write_file(m.M("after"), b"fine")
        self.assertContent(m.M("after"), "fine")

    def test_enospc_during_copy_up(self):
        m = self.mount()
        free0 = self.free()
        try:
            fd = os.open(m.M("big"), os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC, e)
        else:
            try:
                e = sfs.errno_of(os.write, fd, b"more")
                self.assertEqual(e, errno.ENOSPC, "10 MB copied up into a 6 MB local layer?")
            finally:
                sfs.errno_of(os.close, fd)
        # the old view, complete; no half copy anywhere; the space is back
        self.assertEqual(read_file(m.M("big")), self.big)
        self.assertEqual(os.stat(m.M("big")).st_size, len(self.big))
        u = self.layers.U("big")
        if os.path.exists(u) and os.stat(u).st_size:
            self.assertEqual(read_file(u), self.big, "partial copy-up in the local layer")
        work = os.path.join(self.layers.work, "work")
        if os.path.isdir(work):
            self.assertEqual(os.listdir(work), [], "failed copy-up left files in workdir/work")
        self.assertGreaterEqual(self.free(), free0 - 256 * 1024, "failed copy-up leaked space")
        # everything else keeps working
        with open(m.M("small"), "ab") as f:
            f.write(b"+")
        self.assertContent(m.M("small"), "small+")
        m.remount()
        self.assertEqual(read_file(m.M("big")), self.big)


class ReadOnlyTest(sfs.TestCase):

    def test_ro_mount(self):
        write_file(self.layers.L("f"), b"lower")
        write_file(self.layers.L("d", "x"), b"x")
        write_file(self.layers.U("u"), b"upper")
        m = self.mount(ro=True)
        self.assertContent(m.M("f"), "lower")
        self.assertContent(m.M("u"), "upper")
        E = errno.EROFS
        self.assertErrno(E, open, m.M("f"), "ab")
        self.assertErrno(E, open, m.M("u"), "ab")
        self.assertErrno(E, open, m.M("new"), "wb")
        self.assertErrno(E, os.mkdir, m.M("nd"))
        self.assertErrno(E, os.unlink, m.M("f"))
        self.assertErrno(E, os.unlink, m.M("u"))
        self.assertErrno(E, os.rmdir, m.M("d"))
        self.assertErrno(E, os.rename, m.M("f"), m.M("g"))
        self.assertErrno(E, os.link, m.M("f"), m.M("g"))
        self.assertErrno(E, os.symlink, "f", m.M("g"))
        self.assertErrno(E, os.chmod, m.M("f"), 0o600)
        self.assertErrno(E, os.utime, m.M("f"), None)
        self.assertErrno(E, os.setxattr, m.M("f"), "user.x", b"1")
        self.assertErrno(E, os.truncate, m.M("u"), 0)
        self.assertEqual(sfs.walk(self.layers.upper), ["u"])


if __name__ == "__main__":
    sfs.main()
