"""Copy-up on the first change to a shared-layer object: data, mode, owner,
times, xattrs, parents first; nothing copied by reading; the shared file
stays byte-identical (checked by the harness at every unmount)."""

import errno
import fcntl
import hashlib
import os
import stat
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

MTIME = 1_600_000_000_123_456_789
ATIME = 1_500_000_000_000_000_001


class CopyUpTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        self.data = os.urandom(200_000)
        write_file(L("a", "b", "c", "file"), self.data)
        for i, d in enumerate(("a", "a/b", "a/b/c")):
            p = L(*d.split("/"))
            os.chmod(p, 0o750 - i * 0o10)
            os.chown(p, 100 + i, 200 + i)
            os.setxattr(p, "user.dir", d.encode())
        f = L("a", "b", "c", "file")
        os.chmod(f, 0o640)
        os.chown(f, 1234, 2345)
        os.setxattr(f, "user.one", b"1")
        os.setxattr(f, "user.bin", bytes(range(256)))
        os.utime(f, ns=(ATIME, MTIME))
        for d in ("a/b/c", "a/b", "a"):
            os.utime(L(*d.split("/")), ns=(ATIME, MTIME + 1000))
        write_file(L("big"), b"".join(hashlib.sha256(b"%d" % i).digest() * 1024
                                      for i in range(640)))  # 20 MiB
        os.symlink("a/b/c/file", L("sym"))
        os.lchown(L("sym"), 77, 88)
        os.mkfifo(L("fifo"), 0o600)
        os.makedirs(L("emptydir"))
        os.chmod(L("emptydir"), 0o700)
        write_file(L("ro"), b"readonly", mode=0o444)

    def file_meta(self, p):
        st = os.stat(p)
        return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def check_parents(self):
        U, L = self.layers.U, self.layers.L
        for d in ("a", "a/b", "a/b/c"):
            u, lo = U(*d.split("/")), L(*d.split("/"))
            self.assertTrue(os.path.isdir(u), "parent %s not copied up" % d)
            self.assertEqual(self.file_meta(u), self.file_meta(lo), d)
            self.assertEqual(os.getxattr(u, "user.dir"), d.encode())

    def test_no_copy_up_on_read(self):
        m = self.mount()
        for rel in sfs.walk(m.mnt):
            p = m.M(rel)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                read_file(p)
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    fcntl.flock(fd, fcntl.LOCK_SH)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.lseek(fd, 0, os.SEEK_END)
                finally:
                    os.close(fd)
            elif stat.S_ISDIR(st.st_mode):
                os.listdir(p)
            sfs.xattrs_of(p)
            os.access(p, os.W_OK)
        self.assertEqual(sfs.walk(self.layers.upper), [])

    def test_copy_up_on_write(self):
        m = self.mount()
        p = m.M("a", "b", "c", "file")
        with open(p, "ab") as f:
            f.write(b"APPENDED")
        u = self.layers.U("a", "b", "c", "file")
        self.assertEqual(read_file(u), self.data + b"APPENDED")
        self.assertEqual(read_file(p), self.data + b"APPENDED")
        self.assertEqual(self.file_meta(u), (0o640, 1234, 2345))
        self.assertEqual(self.file_meta(p), (0o640, 1234, 2345))
        self.assertEqual(os.getxattr(u, "user.one"), b"1")
        self.assertEqual(os.getxattr(u, "user.bin"), bytes(range(256)))
        self.assertEqual(os.getxattr(p, "user.bin"), bytes(range(256)))
        self.check_parents()
        m.remount()
        self.assertEqual(read_file(p), self.data + b"APPENDED")

    def test_copy_up_keeps_times(self):
        """Opening for write without writing, and a full (metacopy=off)
        chmod, copy up with the original mtime."""
        m = self.mount(metacopy="off")
        p = m.M("a", "b", "c", "file")
        fd = os.open(p, os.O_RDWR)
        os.close(fd)
        self.assertEqual(os.stat(p).st_mtime_ns, MTIME)
        u = self.layers.U("a", "b", "c", "file")
        self.assertEqual(os.stat(u).st_mtime_ns, MTIME)
        self.assertEqual(read_file(u), self.data)
        self.check_parents()
        os.chmod(m.M("ro"), 0o400)
        st = os.stat(self.layers.U("ro"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o400)
        self.assertEqual(st.st_mtime_ns, os.stat(self.layers.L("ro")).st_mtime_ns)
        self.assertEqual(read_file(self.layers.U("ro")), b"readonly")
        m.remount()
        self.assertEqual(os.stat(p).st_mtime_ns, MTIME)

    def test_copy_up_big_file(self):
        m = self.mount()
        want = sfs.sha_noatime(self.layers.L("big"))
        fd = os.open(m.M("big"), os.O_RDWR)
        try:
            os.pwrite(fd, b"X", 10 << 20)
        finally:
            os.close(fd)
        data = bytearray(sfs.read_noatime(self.layers.L("big")))
        data[10 << 20] = ord("X")
        self.assertEqual(hashlib.sha256(read_file(m.M("big"))).hexdigest(),
                         hashlib.sha256(data).hexdigest())
        self.assertEqual(hashlib.sha256(read_file(self.layers.U("big"))).hexdigest(),
                         hashlib.sha256(data).hexdigest())
        self.assertEqual(sfs.sha_noatime(self.layers.L("big")), want)

    def test_copy_ups_of_different_files_do_not_wait(self):
        """While a big file's data is copied up, a metadata-only copy-up
        of another file in a local directory completes."""
        m = self.mount()
        size = 256 << 20
        with open(self.layers.L("huge"), "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        os.sync()
        sfs.write_file(self.layers.L("small"), b"s")
        m.resnapshot()
        os.stat(m.M("small"))
        done = {}

        def big():
            fd = os.open(m.M("huge"), os.O_RDWR)  # copies 256 MiB up
            done["big"] = time.monotonic()
            os.close(fd)
        t = threading.Thread(target=big)
        t.start()
        # the big copy is being built in workdir
        building = os.path.join(self.layers.work, "work")
        self.assertTrue(sfs.wait_for(lambda: os.listdir(building), interval=0.001))
        os.chmod(m.M("small"), 0o600)  # metadata-only copy-up
        done["small"] = time.monotonic()
        t.join()
        self.assertLess(done["small"], done["big"])
        self.assertEqual(stat.S_IMODE(os.stat(self.layers.U("small")).st_mode), 0o600)
        self.assertEqual(os.stat(self.layers.U("huge")).st_size, size)

    def test_copy_up_readonly_file_written_by_root(self):
        m = self.mount()
        with open(m.M("ro"), "ab") as f:  # root may write a 0444 file
            f.write(b"!")
        self.assertEqual(read_file(m.M("ro")), b"readonly!")
        self.assertEqual(stat.S_IMODE(os.stat(m.M("ro")).st_mode), 0o444)

    def test_copy_up_symlink_fifo_dir(self):
        m = self.mount()
        os.lchown(m.M("sym"), 5, 6)
        st = os.lstat(self.layers.U("sym"))
        self.assertTrue(stat.S_ISLNK(st.st_mode))
        self.assertEqual((st.st_uid, st.st_gid), (5, 6))
        self.assertEqual(os.readlink(self.layers.U("sym")), "a/b/c/file")
        os.chmod(m.M("fifo"), 0o644)
        st = os.lstat(self.layers.U("fifo"))
        self.assertTrue(stat.S_ISFIFO(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        os.chown(m.M("emptydir"), 9, 9)
        st = os.lstat(self.layers.U("emptydir"))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o700, 9))

    def test_copy_up_dir_by_creating_child(self):
        m = self.mount()
        write_file(m.M("a", "b", "new"), b"n")
        self.assertTrue(os.path.isdir(self.layers.U("a", "b")))
        for d in ("a", "a/b"):
            self.assertEqual(self.file_meta(self.layers.U(*d.split("/"))),
                             self.file_meta(self.layers.L(*d.split("/"))))
        # the rest of the dir still merges, nothing else copied
        self.assertEqual(sorted(os.listdir(m.M("a", "b"))), ["c", "new"])
        self.assertEqual(sorted(os.listdir(self.layers.U("a", "b"))), ["new"])
        self.assertEqual(sorted(os.listdir(m.M("a", "b", "c"))), ["file"])

    def test_concurrent_copy_up(self):
        """Eight threads open the same shared-layer file for append at the
        same moment: one copy-up, every write kept."""
        m = self.mount()
        p = m.M("a", "b", "c", "file")
        n = 8
        barrier = threading.Barrier(n)
        errors = []

        def worker(i):
            try:
                barrier.wait()
                fd = os.open(p, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, b"<writer %d>" % i)
                finally:
                    os.close(fd)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        got = read_file(p)
        self.assertEqual(got[:len(self.data)], self.data)
        tail = got[len(self.data):]
        for i in range(n):
            self.assertIn(b"<writer %d>" % i, tail)
        self.assertEqual(len(tail), sum(len(b"<writer %d>" % i) for i in range(n)))
        self.assertEqual(read_file(self.layers.U("a", "b", "c", "file")), got)
        self.assertEqual(os.listdir(self.layers.U("a", "b", "c")), ["file"])

    def test_copy_up_xattr_change(self):
        m = self.mount()
        p = m.M("a", "b", "c", "file")
        os.setxattr(p, "user.new", b"n")
        u = self.layers.U("a", "b", "c", "file")
        self.assertEqual(os.getxattr(u, "user.new"), b"n")
        self.assertEqual(os.getxattr(u, "user.one"), b"1")
        self.assertEqual(os.getxattr(p, "user.one"), b"1")
        self.assertEqual(read_file(p), self.data)
        self.assertEqual(self.file_meta(p), (0o640, 1234, 2345))
        os.removexattr(p, "user.one")
        self.assertErrno(errno.ENODATA, os.getxattr, p, "user.one")


if __name__ == "__main__":
    sfs.main()
