"""Every operation a package manager, git, python and an editor use, through
a real mount: errno values, contents, attributes, and what lands in which
layer."""

import errno
import fcntl
import mmap
import os
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

DATA = b"0123456789abcdef" * 64  # 1 KiB


class AttrTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("f"), DATA, mode=0o644)
        write_file(L("x"), DATA, mode=0o755)
        write_file(L("d", "inner"), b"inner")
        os.symlink("f", L("sl"))
        os.utime(L("f"), ns=(1_500_000_000_111_111_111, 1_600_000_000_222_222_222))

    def test_getattr_lower(self):
        m = self.mount()
        st = os.stat(m.M("f"))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        self.assertEqual(st.st_size, len(DATA))
        self.assertEqual(st.st_nlink, 1)
        self.assertEqual(st.st_mtime_ns, 1_600_000_000_222_222_222)
        self.assertTrue(stat.S_ISDIR(os.stat(m.M("d")).st_mode))
        self.assertTrue(stat.S_ISLNK(os.lstat(m.M("sl")).st_mode))
        self.assertEqual(os.stat(m.M("sl")).st_ino, st.st_ino)
        self.assertErrno(errno.ENOENT, os.stat, m.M("nope"))
        self.assertErrno(errno.ENOTDIR, os.stat, m.M("f", "below"))
        # looking things up copies nothing up
        self.assertEqual(os.listdir(self.layers.upper), [])

    def test_chmod(self):
        m = self.mount()
        os.chmod(m.M("f"), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(m.M("f")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.layers.U("f")).st_mode), 0o600)
        os.chmod(m.M("d"), 0o711)
        self.assertEqual(stat.S_IMODE(os.stat(m.M("d")).st_mode), 0o711)
        os.chmod(m.M("f"), 0o4755)
        self.assertEqual(stat.S_IMODE(os.stat(m.M("f")).st_mode), 0o4755)
        self.assertContent(m.M("f"), DATA)

    def test_chown(self):
        m = self.mount()
        os.chown(m.M("f"), 1234, 5678)
        st = os.stat(m.M("f"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 5678))
        os.chown(m.M("f"), -1, 42)
        st = os.stat(m.M("f"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 42))
        ust = os.stat(self.layers.U("f"))
        self.assertEqual((ust.st_uid, ust.st_gid), (1234, 42))
        os.lchown(m.M("sl"), 99, 98)
        st = os.lstat(m.M("sl"))
        self.assertEqual((st.st_uid, st.st_gid), (99, 98))
        self.assertEqual(os.readlink(m.M("sl")), "f")
        os.chown(m.M("d"), 7, 8)
        st = os.stat(m.M("d"))
        self.assertEqual((st.st_uid, st.st_gid), (7, 8))
        self.assertEqual(os.listdir(m.M("d")), ["inner"])

    def test_truncate(self):
        m = self.mount()
        os.truncate(m.M("f"), 3)
        self.assertContent(m.M("f"), DATA[:3])
        os.truncate(m.M("f"), 10)
        self.assertContent(m.M("f"), DATA[:3] + b"\0" * 7)
        self.assertEqual(read_file(self.layers.U("f")), DATA[:3] + b"\0" * 7)
        fd = os.open(m.M("x"), os.O_RDWR)
        try:
            os.ftruncate(fd, 5)
            self.assertEqual(os.fstat(fd).st_size, 5)
        finally:
            os.close(fd)
        self.assertContent(m.M("x"), DATA[:5])
        self.assertErrno(errno.EISDIR, os.truncate, m.M("d"), 0)

    def test_utimens(self):
        m = self.mount()
        p = m.M("f")
        os.utime(p, ns=(1_111_111_111_123_456_789, 1_222_222_222_987_654_321))
        st = os.stat(p)
        self.assertEqual(st.st_atime_ns, 1_111_111_111_123_456_789)
        self.assertEqual(st.st_mtime_ns, 1_222_222_222_987_654_321)
        # UTIME_OMIT for mtime: only atime changes
        sfs.utimensat(p, (1_300_000_000, 5), sfs.UTIME_OMIT)
        st = os.stat(p)
        self.assertEqual(st.st_atime_ns, 1_300_000_000_000_000_005)
        self.assertEqual(st.st_mtime_ns, 1_222_222_222_987_654_321)
        # UTIME_NOW for atime, UTIME_OMIT for mtime
        t0 = time.time_ns()
        sfs.utimensat(p, sfs.UTIME_NOW, sfs.UTIME_OMIT)
        t1 = time.time_ns()
        st = os.stat(p)
        self.assertGreaterEqual(st.st_atime_ns, t0 - 20_000_000)
        self.assertLessEqual(st.st_atime_ns, t1 + 20_000_000)
        self.assertEqual(st.st_mtime_ns, 1_222_222_222_987_654_321)
        # UTIME_OMIT for atime, UTIME_NOW for mtime
        a = st.st_atime_ns
        t0 = time.time_ns()
        sfs.utimensat(p, sfs.UTIME_OMIT, sfs.UTIME_NOW)
        t1 = time.time_ns()
        st = os.stat(p)
        self.assertEqual(st.st_atime_ns, a)
        self.assertGreaterEqual(st.st_mtime_ns, t0 - 20_000_000)
        self.assertLessEqual(st.st_mtime_ns, t1 + 20_000_000)
        # both OMIT: nothing changes
        before = os.stat(p)
        sfs.utimensat(p, sfs.UTIME_OMIT, sfs.UTIME_OMIT)
        after = os.stat(p)
        self.assertEqual((before.st_atime_ns, before.st_mtime_ns),
                         (after.st_atime_ns, after.st_mtime_ns))
        # touch -m / touch -a as an editor or make would run them
        sfs.run(["touch", "-m", "-d", "@1400000000.5", m.M("x")])
        st = os.stat(m.M("x"))
        self.assertEqual(st.st_mtime_ns, 1_400_000_000_500_000_000)
        sfs.run(["touch", "-a", "-d", "@1300000000", m.M("x")])
        st2 = os.stat(m.M("x"))
        self.assertEqual(st2.st_atime_ns, 1_300_000_000_000_000_000)
        self.assertEqual(st2.st_mtime_ns, 1_400_000_000_500_000_000)
        # symlink itself (AT_SYMLINK_NOFOLLOW)
        sfs.utimensat(m.M("sl"), (1_000_000_000, 0), (1_000_000_001, 0), follow=False)
        self.assertEqual(os.lstat(m.M("sl")).st_mtime_ns, 1_000_000_001_000_000_000)
        # and a directory
        os.utime(m.M("d"), ns=(5_000_000_000, 6_000_000_000))
        self.assertEqual(os.stat(m.M("d")).st_mtime_ns, 6_000_000_000)

    def test_access(self):
        m = self.mount()
        self.assertTrue(os.access(m.M("f"), os.R_OK | os.W_OK))
        self.assertFalse(os.access(m.M("f"), os.X_OK))
        self.assertTrue(os.access(m.M("x"), os.X_OK))
        self.assertTrue(os.access(m.M("d"), os.X_OK | os.W_OK))
        self.assertFalse(os.access(m.M("nope"), os.F_OK))
        # access() changes nothing below
        self.assertEqual(os.listdir(self.layers.upper), [])

    def test_access_private_mount(self):
        """Without allow_other there is no default_permissions: ACCESS
        requests reach scratchfs, which asks the layer."""
        m = self.mount(noallow_other=True)
        self.assertTrue(os.access(m.M("f"), os.R_OK | os.W_OK))
        self.assertFalse(os.access(m.M("f"), os.X_OK))
        self.assertTrue(os.access(m.M("x"), os.X_OK))
        self.assertFalse(os.access(m.M("nope"), os.F_OK))
        self.assertEqual(os.listdir(self.layers.upper), [])
        m.umount()
        m = self.mount(noallow_other=True, ro=True)
        self.assertFalse(os.access(m.M("f"), os.W_OK))
        self.assertTrue(os.access(m.M("f"), os.R_OK))


class OpenTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        write_file(self.layers.L("f"), DATA, mode=0o640)
        write_file(self.layers.L("d", "g"), b"g")
        write_file(self.layers.U("u"), b"upper")

    def test_create_excl(self):
        m = self.mount()
        for name in ("f", "u", "d"):
            self.assertErrno(errno.EEXIST, os.open, m.M(name),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        fd = os.open(m.M("d", "new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.write(fd, b"hello")
        os.close(fd)
        self.assertContent(m.M("d", "new"), "hello")
        self.assertEqual(read_file(self.layers.U("d", "new")), b"hello")
        st = os.stat(m.M("d", "new"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600 & ~self._umask())
        self.assertErrno(errno.ENOENT, os.open, m.M("nodir", "x"), os.O_CREAT | os.O_WRONLY)
        self.assertErrno(errno.EISDIR, os.open, m.M("d"), os.O_WRONLY)
        self.assertErrno(errno.ENOTDIR, os.open, m.M("f"), os.O_RDONLY | os.O_DIRECTORY)

    def _umask(self):
        u = os.umask(0)
        os.umask(u)
        return u

    def test_open_trunc(self):
        m = self.mount()
        fd = os.open(m.M("f"), os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        self.assertEqual(os.stat(m.M("f")).st_size, 0)
        self.assertContent(m.M("f"), b"")
        self.assertEqual(read_file(self.layers.U("f")), b"")
        self.assertEqual(stat.S_IMODE(os.stat(m.M("f")).st_mode), 0o640)

    def test_open_append(self):
        m = self.mount()
        fd = os.open(m.M("f"), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"tail")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"more")  # O_APPEND: still at the end
        os.close(fd)
        self.assertContent(m.M("f"), DATA + b"tailmore")
        with open(m.M("u"), "ab") as f:
            f.write(b"!")
        self.assertContent(m.M("u"), "upper!")

    def test_read_write(self):
        m = self.mount()
        fd = os.open(m.M("f"), os.O_RDWR)
        try:
            self.assertEqual(os.pread(fd, 16, 16), DATA[16:32])
            os.pwrite(fd, b"XYZ", 100)
            self.assertEqual(os.pread(fd, 5, 99), DATA[99:100] + b"XYZ" + DATA[103:104])
            os.pwrite(fd, b"E", len(DATA) + 10)  # past EOF: a hole of zeros
            self.assertEqual(os.fstat(fd).st_size, len(DATA) + 11)
            os.fsync(fd)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        exp = bytearray(DATA)
        exp[100:103] = b"XYZ"
        exp += b"\0" * 10 + b"E"
        self.assertContent(m.M("f"), bytes(exp))
        self.assertEqual(read_file(self.layers.U("f")), bytes(exp))
        # bigger than any single FUSE request
        big = os.urandom(3 << 20)
        write_file(m.M("big"), big)
        self.assertEqual(read_file(m.M("big")), big)
        self.assertEqual(read_file(self.layers.U("big")), big)

    def test_mmap_write(self):
        m = self.mount()
        with open(m.M("f"), "r+b") as f:
            mm = mmap.mmap(f.fileno(), 0)
            mm[0:4] = b"MMAP"
            mm.flush()
            mm.close()
        self.assertContent(m.M("f"), b"MMAP" + DATA[4:])
        self.assertEqual(read_file(self.layers.U("f")), b"MMAP" + DATA[4:])

    def test_exec(self):
        write_file(self.layers.L("run.sh"), b"#!/bin/sh\necho shared $1\n", mode=0o755)
        m = self.mount()
        self.assertEqual(sfs.run([m.M("run.sh"), "a"]).stdout, "shared a\n")
        with open(m.M("run.sh"), "r+b") as f:
            f.seek(15)
            f.write(b"local  $1\n")
        self.assertEqual(sfs.run([m.M("run.sh"), "b"]).stdout, "local b\n")
        write_file(m.M("new.sh"), b"#!/bin/sh\necho new\n", mode=0o755)
        self.assertEqual(sfs.run([m.M("new.sh")]).stdout, "new\n")
        # writing a running executable: ETXTBSY
        sfs.run(["cp", "/bin/sleep", m.M("sleep")])
        p = subprocess.Popen([m.M("sleep"), "5"])
        try:
            time.sleep(0.3)
            self.assertErrno(errno.ETXTBSY, open, m.M("sleep"), "r+b")
        finally:
            p.kill()
            p.wait()

    def test_fsync_dir(self):
        m = self.mount()
        write_file(m.M("d", "n"), b"n")
        fd = os.open(m.M("d"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def test_editor_save(self):
        """vim-style save: write a swap file, rename the original to a
        backup, write the new file, fsync, drop the backup."""
        m = self.mount()
        p = m.M("d", "g")
        write_file(m.M("d", ".g.swp"), b"swap")
        os.rename(p, m.M("d", "g~"))
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, b"edited")
        os.fsync(fd)
        os.close(fd)
        os.unlink(m.M("d", "g~"))
        os.unlink(m.M("d", ".g.swp"))
        self.assertContent(p, "edited")
        self.assertEqual(sorted(os.listdir(m.M("d"))), ["g"])
        # atomic replace, as python and many tools do
        tmp = m.M("d", "g.tmp")
        write_file(tmp, b"replaced")
        os.replace(tmp, p)
        self.assertContent(p, "replaced")
        self.assertEqual(sorted(os.listdir(m.M("d"))), ["g"])
        self.assertEqual(read_file(self.layers.U("d", "g")), b"replaced")


class NamespaceTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("f"), b"f")
        write_file(L("g"), b"g")
        write_file(L("dl", "a"), b"a")
        write_file(L("dl", "b"), b"b")
        os.makedirs(L("empty"))
        write_file(L("pkg", "mod.py"), b"print(1)\n")
        write_file(L("pkg", "sub", "deep.txt"), b"deep")
        os.symlink("../mod.py", L("pkg", "sub", "link"))
        os.symlink("f", L("lnk"))
        os.symlink("y/" * 2000 + "end", L("longlower"))   # 4003 bytes

    def test_mkdir_rmdir(self):
        m = self.mount()
        os.mkdir(m.M("nd"), 0o750)
        self.assertTrue(os.path.isdir(self.layers.U("nd")))
        self.assertErrno(errno.EEXIST, os.mkdir, m.M("nd"))
        self.assertErrno(errno.EEXIST, os.mkdir, m.M("dl"))
        self.assertErrno(errno.EEXIST, os.mkdir, m.M("f"))
        self.assertErrno(errno.ENOENT, os.mkdir, m.M("no", "such"))
        os.rmdir(m.M("nd"))
        self.assertFalse(os.path.lexists(m.M("nd")))
        self.assertErrno(errno.ENOENT, os.rmdir, m.M("nd"))
        self.assertErrno(errno.ENOTDIR, os.rmdir, m.M("f"))
        # lower-only empty dir
        os.rmdir(m.M("empty"))
        self.assertErrno(errno.ENOENT, os.stat, m.M("empty"))
        self.assertNotIn("empty", os.listdir(m.mnt))

    def test_rmdir_merged(self):
        m = self.mount()
        # only shared-layer children: not empty
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, m.M("dl"))
        os.unlink(m.M("dl", "a"))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, m.M("dl"))
        os.unlink(m.M("dl", "b"))
        self.assertEqual(os.listdir(m.M("dl")), [])
        os.rmdir(m.M("dl"))
        self.assertErrno(errno.ENOENT, os.stat, m.M("dl"))
        # recreated: empty, the shared children stay hidden
        os.mkdir(m.M("dl"))
        self.assertEqual(os.listdir(m.M("dl")), [])
        self.assertErrno(errno.ENOENT, os.stat, m.M("dl", "a"))
        # kernel format: the new directory is opaque
        self.assertEqual(os.getxattr(self.layers.U("dl"), "trusted.overlay.opaque"), b"y")
        m.remount()
        self.assertEqual(os.listdir(m.M("dl")), [])

    def test_unlink(self):
        m = self.mount()
        os.unlink(m.M("f"))
        self.assertErrno(errno.ENOENT, os.stat, m.M("f"))
        self.assertErrno(errno.ENOENT, os.unlink, m.M("f"))
        self.assertNotIn("f", os.listdir(m.mnt))
        self.assertWhiteout(self.layers.U("f"))
        self.assertErrno(errno.EISDIR, os.unlink, m.M("dl"))
        os.unlink(m.M("lnk"))  # the link, not its target
        self.assertContent(m.M("g"), "g")
        write_file(m.M("newf"), b"n")
        os.unlink(m.M("newf"))
        self.assertFalse(os.path.lexists(self.layers.U("newf")) and
                         not sfs.is_whiteout(self.layers.U("newf")))
        m.remount()
        self.assertErrno(errno.ENOENT, os.stat, m.M("f"))

    def test_open_file_survives_unlink_and_rename(self):
        m = self.mount()
        fd = os.open(m.M("f"), os.O_RDONLY)          # shared-layer file
        try:
            os.unlink(m.M("f"))
            self.assertErrno(errno.ENOENT, os.stat, m.M("f"))
            self.assertEqual(os.pread(fd, 10, 0), b"f")
            self.assertEqual(os.fstat(fd).st_size, 1)
        finally:
            os.close(fd)
        write_file(m.M("u"), b"local")
        fd = os.open(m.M("u"), os.O_RDWR)            # local file
        try:
            os.rename(m.M("u"), m.M("dl", "u2"))
            os.pwrite(fd, b"L", 0)
            self.assertContent(m.M("dl", "u2"), "Local")
            os.unlink(m.M("dl", "u2"))
            os.pwrite(fd, b"!", 5)
            self.assertEqual(os.pread(fd, 10, 0), b"Local!")
            self.assertEqual(os.fstat(fd).st_nlink, 0)
        finally:
            os.close(fd)
        self.assertEqual(sorted(os.listdir(m.M("dl"))), ["a", "b"])
        # a directory removed while a process is inside it
        os.mkdir(m.M("cwd"))
        dfd = os.open(m.M("cwd"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.rmdir(m.M("cwd"))
            self.assertEqual(os.listdir(dfd), [])
            self.assertErrno(errno.ENOENT, os.open, "x", os.O_CREAT | os.O_WRONLY, 0o644,
                             dir_fd=dfd)
        finally:
            os.close(dfd)

    def test_name_length(self):
        m = self.mount()
        name = "n" * 255
        write_file(m.M(name), b"long")
        self.assertContent(m.M(name), "long")
        self.assertIn(name, os.listdir(m.mnt))
        os.unlink(m.M(name))
        self.assertErrno(errno.ENAMETOOLONG, open, m.M("n" * 256), "w")
        deep = m.M(*["dir%02d" % i for i in range(40)])
        os.makedirs(deep)
        write_file(os.path.join(deep, "leaf"), b"leaf")
        self.assertContent(os.path.join(deep, "leaf"), "leaf")

    def test_symlink(self):
        m = self.mount()
        self.assertEqual(os.readlink(m.M("lnk")), "f")
        self.assertEqual(os.readlink(m.M("pkg", "sub", "link")), "../mod.py")
        self.assertContent(m.M("pkg", "sub", "link"), "print(1)\n")
        os.symlink("pkg/sub/deep.txt", m.M("newlink"))
        self.assertEqual(os.readlink(m.M("newlink")), "pkg/sub/deep.txt")
        self.assertContent(m.M("newlink"), "deep")
        self.assertEqual(os.readlink(self.layers.U("newlink")), "pkg/sub/deep.txt")
        self.assertErrno(errno.EEXIST, os.symlink, "x", m.M("f"))
        self.assertErrno(errno.EINVAL, os.readlink, m.M("f"))
        long_target = "x/" * 1500 + "end"   # 3003 bytes
        os.symlink(long_target, m.M("longlink"))
        self.assertEqual(os.readlink(m.M("longlink")), long_target)
        self.assertEqual(os.readlink(m.M("longlower")), "y/" * 2000 + "end")
        os.symlink("/absolute/dangling", m.M("dangling"))
        self.assertEqual(os.readlink(m.M("dangling")), "/absolute/dangling")
        self.assertTrue(stat.S_ISLNK(os.lstat(m.M("dangling")).st_mode))

    def test_mknod_fifo(self):
        m = self.mount()
        os.mkfifo(m.M("fifo"), 0o640)
        st = os.lstat(m.M("fifo"))
        self.assertTrue(stat.S_ISFIFO(st.st_mode))
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.layers.U("fifo")).st_mode))
        self.assertErrno(errno.EEXIST, os.mkfifo, m.M("f"))
        # it works as a fifo
        r = os.open(m.M("fifo"), os.O_RDONLY | os.O_NONBLOCK)
        w = os.open(m.M("fifo"), os.O_WRONLY | os.O_NONBLOCK)
        os.write(w, b"ping")
        self.assertEqual(os.read(r, 4), b"ping")
        os.close(w)
        os.close(r)

    def test_link_basic(self):
        m = self.mount()
        write_file(m.M("u1"), b"u")
        os.link(m.M("u1"), m.M("u2"))
        a, b = os.stat(m.M("u1")), os.stat(m.M("u2"))
        self.assertEqual(a.st_ino, b.st_ino)
        self.assertEqual((a.st_nlink, b.st_nlink), (2, 2))
        self.assertErrno(errno.EEXIST, os.link, m.M("u1"), m.M("g"))
        self.assertErrno(errno.ENOENT, os.link, m.M("nope"), m.M("x"))
        self.assertErrno(errno.EPERM, os.link, m.M("dl"), m.M("dl2"))
        # source only in the shared layer
        ino = os.stat(m.M("f")).st_ino
        os.link(m.M("f"), m.M("dl", "f2"))
        self.assertEqual(os.stat(m.M("dl", "f2")).st_ino, ino)
        self.assertEqual(os.stat(m.M("f")).st_nlink, 2)
        self.assertContent(m.M("dl", "f2"), "f")

    def test_rename_file(self):
        m = self.mount()
        ino = os.stat(m.M("f")).st_ino
        os.rename(m.M("f"), m.M("dl", "moved"))
        self.assertErrno(errno.ENOENT, os.stat, m.M("f"))
        self.assertContent(m.M("dl", "moved"), "f")
        self.assertEqual(os.stat(m.M("dl", "moved")).st_ino, ino)
        self.assertWhiteout(self.layers.U("f"))
        # replace an existing (shared) name
        os.rename(m.M("dl", "moved"), m.M("g"))
        self.assertContent(m.M("g"), "f")
        self.assertEqual(sorted(os.listdir(m.M("dl"))), ["a", "b"])
        # rename errors
        self.assertErrno(errno.ENOENT, os.rename, m.M("nope"), m.M("x"))
        self.assertErrno(errno.EISDIR, os.rename, m.M("g"), m.M("dl"))
        self.assertErrno(errno.ENOTDIR, os.rename, m.M("dl"), m.M("g"))
        os.mkdir(m.M("target"))
        write_file(m.M("target2", "x"), b"x")
        self.assertErrno(errno.ENOTEMPTY, os.rename, m.M("empty"), m.M("dl"))
        os.rename(m.M("empty"), m.M("target"))  # over an empty dir: fine
        self.assertFalse(os.path.lexists(m.M("empty")))
        self.assertTrue(os.path.isdir(m.M("target")))
        m.remount()
        self.assertContent(m.M("g"), "f")
        self.assertErrno(errno.ENOENT, os.stat, m.M("f"))

    def test_rename_noreplace(self):
        m = self.mount()
        write_file(m.M("up"), b"up")
        # target only in the shared layer
        self.assertErrno(errno.EEXIST, sfs.renameat2, m.M("up"), m.M("g"), sfs.RENAME_NOREPLACE)
        # target in the local layer
        write_file(m.M("up2"), b"up2")
        self.assertErrno(errno.EEXIST, sfs.renameat2, m.M("up"), m.M("up2"), sfs.RENAME_NOREPLACE)
        # lower source, lower target
        self.assertErrno(errno.EEXIST, sfs.renameat2, m.M("f"), m.M("g"), sfs.RENAME_NOREPLACE)
        self.assertContent(m.M("g"), "g")
        self.assertContent(m.M("up"), "up")
        # free target: works
        sfs.renameat2(m.M("f"), m.M("free"), sfs.RENAME_NOREPLACE)
        self.assertContent(m.M("free"), "f")
        self.assertErrno(errno.ENOENT, os.stat, m.M("f"))
        # a name deleted through the mount is free again
        os.unlink(m.M("g"))
        sfs.renameat2(m.M("up"), m.M("g"), sfs.RENAME_NOREPLACE)
        self.assertContent(m.M("g"), "up")
        # also for a shared source, which leaves a whiteout behind
        os.unlink(m.M("dl", "b"))
        sfs.renameat2(m.M("dl", "a"), m.M("dl", "b"), sfs.RENAME_NOREPLACE)
        self.assertContent(m.M("dl", "b"), "a")
        self.assertEqual(os.listdir(m.M("dl")), ["b"])

    def test_rename_exchange(self):
        m = self.mount()
        write_file(m.M("up"), b"upper")
        ia, ib = os.stat(m.M("f")).st_ino, os.stat(m.M("up")).st_ino
        sfs.renameat2(m.M("f"), m.M("up"), sfs.RENAME_EXCHANGE)
        self.assertContent(m.M("f"), "upper")
        self.assertContent(m.M("up"), "f")
        self.assertEqual(os.stat(m.M("f")).st_ino, ib)
        self.assertEqual(os.stat(m.M("up")).st_ino, ia)
        # two shared-layer objects, a file and a directory
        sfs.renameat2(m.M("g"), m.M("dl"), sfs.RENAME_EXCHANGE)
        self.assertContent(m.M("dl"), "g")
        self.assertEqual(sorted(os.listdir(m.M("g"))), ["a", "b"])
        self.assertErrno(errno.ENOENT, sfs.renameat2, m.M("f"), m.M("nope"), sfs.RENAME_EXCHANGE)
        m.remount()
        self.assertContent(m.M("f"), "upper")
        self.assertContent(m.M("up"), "f")
        self.assertContent(m.M("dl"), "g")
        self.assertEqual(sorted(os.listdir(m.M("g"))), ["a", "b"])

    def test_rename_shared_dir(self):
        m = self.mount()
        before = sfs.tree_view(m.M("pkg"))
        os.rename(m.M("pkg"), m.M("pkg2"))   # not EXDEV
        self.assertErrno(errno.ENOENT, os.stat, m.M("pkg"))
        self.assertEqual(sfs.tree_view(m.M("pkg2")), before)
        # the renamed dir is writable and keeps working
        write_file(m.M("pkg2", "sub", "new"), b"new")
        self.assertContent(m.M("pkg2", "sub", "deep.txt"), "deep")
        m.remount()
        self.assertErrno(errno.ENOENT, os.stat, m.M("pkg"))
        after = sfs.tree_view(m.M("pkg2"))
        self.assertEqual(after.pop("sub/new")["size"], 3)
        self.assertEqual(after, before)
        self.assertNotIn("pkg", os.listdir(m.mnt))
        # and back again, under the old name, while a process works inside it
        cwd = os.getcwd()
        os.chdir(m.M("pkg2", "sub"))
        try:
            os.rename(m.M("pkg2"), m.M("pkg"))
            write_file("made-in-cwd", b"cwd")
            self.assertContent("deep.txt", "deep")
        finally:
            os.chdir(cwd)
        self.assertContent(m.M("pkg", "sub", "new"), "new")
        self.assertContent(m.M("pkg", "sub", "made-in-cwd"), "cwd")
        self.assertErrno(errno.ENOENT, os.stat, m.M("pkg2"))

    def test_rename_modified_shared_dir(self):
        """A merged dir with local changes (a deleted shared child, a new
        local child, a modified shared file) keeps them across rename."""
        m = self.mount()
        os.unlink(m.M("dl", "a"))
        write_file(m.M("dl", "c"), b"c")
        with open(m.M("dl", "b"), "ab") as f:
            f.write(b"+")
        os.rename(m.M("dl"), m.M("pkg", "dl_moved"))
        for _ in range(2):
            self.assertEqual(sorted(os.listdir(m.M("pkg", "dl_moved"))), ["b", "c"])
            self.assertContent(m.M("pkg", "dl_moved", "b"), "b+")
            self.assertContent(m.M("pkg", "dl_moved", "c"), "c")
            self.assertErrno(errno.ENOENT, os.stat, m.M("dl"))
            m.remount()

    def test_rename_over_whiteout_and_back(self):
        m = self.mount()
        os.unlink(m.M("f"))
        os.rename(m.M("g"), m.M("f"))
        self.assertContent(m.M("f"), "g")
        self.assertErrno(errno.ENOENT, os.stat, m.M("g"))
        self.assertEqual(sorted(n for n in os.listdir(m.mnt) if n in ("f", "g")), ["f"])
        m.remount()
        self.assertContent(m.M("f"), "g")
        self.assertErrno(errno.ENOENT, os.stat, m.M("g"))


class MiscTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("f"), DATA)
        write_file(L("d", "g"), b"g")
        os.setxattr(L("f"), "user.lower", b"from-lower")
        # a sparse file in the shared layer
        with open(L("sparse"), "wb") as f:
            f.write(b"a" * 4096)
            f.seek(1 << 20)
            f.write(b"b" * 4096)

    def test_statfs(self):
        m = self.mount()
        a, b = os.statvfs(m.mnt), os.statvfs(self.layers.upper)
        self.assertEqual(a.f_blocks * a.f_frsize, b.f_blocks * b.f_frsize)
        self.assertEqual(a.f_blocks, b.f_blocks)
        self.assertGreater(a.f_bavail, 0)
        self.assertGreater(a.f_namemax, 0)

    def test_xattr_user(self):
        m = self.mount()
        p = m.M("f")
        self.assertEqual(os.getxattr(p, "user.lower"), b"from-lower")
        self.assertIn("user.lower", os.listxattr(p))
        self.assertEqual(os.listdir(self.layers.upper), [])  # reading copies nothing
        os.setxattr(p, "user.a", b"1")
        big = os.urandom(3000)
        os.setxattr(p, "user.big", big)
        self.assertEqual(os.getxattr(p, "user.a"), b"1")
        self.assertEqual(os.getxattr(p, "user.big"), big)
        self.assertEqual(sorted(n for n in os.listxattr(p) if n.startswith("user.")),
                         ["user.a", "user.big", "user.lower"])
        self.assertEqual(os.getxattr(self.layers.U("f"), "user.a"), b"1")
        self.assertErrno(errno.EEXIST, os.setxattr, p, "user.a", b"2", os.XATTR_CREATE)
        self.assertErrno(errno.ENODATA, os.setxattr, p, "user.zz", b"2", os.XATTR_REPLACE)
        os.removexattr(p, "user.a")
        self.assertErrno(errno.ENODATA, os.getxattr, p, "user.a")
        self.assertErrno(errno.ENODATA, os.removexattr, p, "user.a")
        os.removexattr(p, "user.lower")
        self.assertErrno(errno.ENODATA, os.getxattr, p, "user.lower")
        self.assertErrno(errno.ENODATA, os.getxattr, m.M("d", "g"), "user.none")
        # on a directory from the shared layer
        os.setxattr(m.M("d"), "user.dir", b"D")
        self.assertEqual(os.getxattr(m.M("d"), "user.dir"), b"D")
        self.assertEqual(os.listdir(m.M("d")), ["g"])
        m.remount()
        self.assertEqual(os.getxattr(p, "user.big"), big)
        self.assertErrno(errno.ENODATA, os.getxattr, p, "user.lower")

    def test_private_xattrs_hidden(self):
        m = self.mount()
        # make the local layer hold every kind of private marker
        os.unlink(m.M("d", "g"))
        os.rmdir(m.M("d"))
        os.mkdir(m.M("d"))                    # opaque
        os.chmod(m.M("f"), 0o600)             # copy-up (maybe metadata only)
        os.link(m.M("sparse"), m.M("sparse2"))
        write_file(m.M("new"), b"n")
        os.rename(m.M("new"), m.M("d", "new"))
        for name in ("d", "f", "sparse", "sparse2", "d/new", ""):
            p = m.M(name)
            for x in os.listxattr(p):
                self.assertFalse(x.startswith("trusted.overlay.") or ".scratchfs." in x,
                                 "%s lists private xattr %s" % (name or "/", x))
        self.assertErrno(errno.ENODATA, os.getxattr, m.M("d"), "trusted.overlay.opaque")
        self.assertErrno(errno.ENODATA, os.getxattr, m.M("f"), "trusted.overlay.metacopy")
        self.assertErrno(errno.ENODATA, os.getxattr, m.M("f"), "trusted.scratchfs.ino")
        for name, path in (("trusted.overlay.opaque", m.M("dd")),
                           ("trusted.overlay.redirect", m.M("dd")),
                           ("trusted.scratchfs.ino", m.M("dd")),
                           ("user.scratchfs.ino", m.M("dd")),
                           ("trusted.overlay.metacopy", m.M("ff"))):
            if not os.path.exists(path):
                if path.endswith("dd"):
                    os.mkdir(path)
                else:
                    write_file(path, b"x")
            e = sfs.errno_of(os.setxattr, path, name, b"y")
            self.assertNotEqual(e, 0, "setting private xattr %s through the mount succeeded" % name)
        self.assertNotIn("trusted.overlay.opaque", sfs.xattrs_of(self.layers.U("dd")))
        self.assertEqual(os.getxattr(self.layers.U("d"), "trusted.overlay.opaque"), b"y")

    def test_fallocate(self):
        m = self.mount()
        fd = os.open(m.M("fa"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.posix_fallocate(fd, 0, 1 << 20)
            self.assertEqual(os.fstat(fd).st_size, 1 << 20)
            self.assertGreaterEqual(os.stat(self.layers.U("fa")).st_blocks * 512, 1 << 20)
            os.pwrite(fd, b"z" * 8192, 0)
            sfs.fallocate(fd, sfs.FALLOC_FL_PUNCH_HOLE | sfs.FALLOC_FL_KEEP_SIZE, 0, 4096)
            self.assertEqual(os.pread(fd, 8192, 0), b"\0" * 4096 + b"z" * 4096)
            self.assertEqual(os.fstat(fd).st_size, 1 << 20)
            sfs.fallocate(fd, sfs.FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20)
            self.assertEqual(os.fstat(fd).st_size, 1 << 20)
        finally:
            os.close(fd)
        # on a shared-layer file: copy-up first, then allocate
        fd = os.open(m.M("f"), os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, 8192)
        finally:
            os.close(fd)
        self.assertEqual(read_file(m.M("f")), DATA + b"\0" * (8192 - len(DATA)))

    def _holes(self, path):
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME) if path.startswith(
            self.layers.lower) else os.open(path, os.O_RDONLY)
        try:
            out = [os.lseek(fd, 0, sfs.SEEK_HOLE), os.lseek(fd, 4096, sfs.SEEK_DATA),
                   os.lseek(fd, (1 << 20), sfs.SEEK_HOLE)]
            e = sfs.errno_of(os.lseek, fd, (1 << 20) + 4096, sfs.SEEK_DATA)
            out.append(e)
        finally:
            os.close(fd)
        return out

    def test_seek_data_hole(self):
        m = self.mount()
        size = (1 << 20) + 4096
        expected = [4096, 1 << 20, size, errno.ENXIO]
        self.assertEqual(self._holes(self.layers.L("sparse")), expected)  # the fs can
        self.assertEqual(self._holes(m.M("sparse")), expected)            # shared file
        with open(m.M("sp2"), "wb") as f:
            f.write(b"a" * 4096)
            f.seek(1 << 20)
            f.write(b"b" * 4096)
        self.assertEqual(self._holes(m.M("sp2")), expected)               # local file

    def test_copy_file_range(self):
        m = self.mount()
        src = os.open(m.M("f"), os.O_RDONLY)
        dst = os.open(m.M("copy"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            n = 0
            while n < len(DATA):
                c = os.copy_file_range(src, dst, len(DATA) - n, n, n)
                self.assertGreater(c, 0)
                n += c
            c = os.copy_file_range(src, dst, 16, 32, len(DATA))
            self.assertEqual(c, 16)
        finally:
            os.close(src)
            os.close(dst)
        self.assertContent(m.M("copy"), DATA + DATA[32:48])
        self.assertEqual(read_file(self.layers.U("copy")), DATA + DATA[32:48])
        self.assertFalse(os.path.lexists(self.layers.U("f")))

    def test_ficlone_fails_fast(self):
        m = self.mount()
        write_file(m.M("src"), DATA)
        for srcname in ("src", "f"):
            src = os.open(m.M(srcname), os.O_RDONLY)
            dst = os.open(m.M("dst"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                t0 = time.monotonic()
                e = self.assertErrno(errno.EOPNOTSUPP, fcntl.ioctl, dst, sfs.FICLONE, src)
                self.assertLess(time.monotonic() - t0, 0.5, e)
            finally:
                os.close(src)
                os.close(dst)
        self.assertEqual(os.stat(m.M("dst")).st_size, 0)

    LOCKER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    if sys.argv[2] == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
    print(0)
except OSError as e:
    print(e.errno)
"""

    def _try_lock_elsewhere(self, path, kind):
        p = sfs.run([sys.executable, "-c", self.LOCKER, path, kind])
        return int(p.stdout.strip())

    def test_flock(self):
        m = self.mount()
        for name in ("f", "local"):
            p = m.M(name)
            if name == "local":
                write_file(p, b"l")
            fd = os.open(p, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.assertIn(self._try_lock_elsewhere(p, "flock"),
                              (errno.EWOULDBLOCK, errno.EAGAIN))
                fcntl.flock(fd, fcntl.LOCK_UN)
                self.assertEqual(self._try_lock_elsewhere(p, "flock"), 0)
                fcntl.flock(fd, fcntl.LOCK_SH)
                # shared + shared from another process is fine
                fd2 = os.open(p, os.O_RDONLY)
                fcntl.flock(fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)
                os.close(fd2)
            finally:
                os.close(fd)

    def test_locks_copy_nothing_up(self):
        m = self.mount()
        fd = os.open(m.M("f"), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        self.assertFalse(os.path.lexists(self.layers.U("f")))

    def test_posix_locks(self):
        m = self.mount()
        p = m.M("f")
        fd = os.open(p, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
            self.assertIn(self._try_lock_elsewhere(p, "lockf"), (errno.EAGAIN, errno.EWOULDBLOCK))
            fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
            self.assertEqual(self._try_lock_elsewhere(p, "lockf"), 0)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        finally:
            os.close(fd)  # closing drops the lock
        self.assertEqual(self._try_lock_elsewhere(p, "lockf"), 0)


class WritebackCacheTest(sfs.TestCase):
    """-o writeback_cache (documented option): the kernel caches writes and
    times; what the mount reports must still be what is stored."""

    def setUp(self):
        super().setUp()
        write_file(self.layers.L("f"), b"shared")

    def test_unlinked_open_files(self):
        m = self.mount(writeback_cache=True)
        fd = os.open(m.M("f"), os.O_RDONLY)
        os.unlink(m.M("f"))
        self.assertEqual(os.pread(fd, 10, 0), b"shared")
        os.close(fd)                                  # no EIO
        write_file(m.M("u"), b"local")
        fd = os.open(m.M("u"), os.O_RDWR)
        os.unlink(m.M("u"))
        os.pwrite(fd, b"L", 0)
        os.fsync(fd)
        self.assertEqual(os.pread(fd, 10, 0), b"Local")
        os.close(fd)

    def test_times_match_storage(self):
        m = self.mount(writeback_cache=True)
        for i in range(20):
            write_file(m.M("w%d" % i), b"data %d" % i)
        os.utime(m.M("w0"), ns=(10**18, 10**18))
        with open(m.M("w1"), "ab") as f:
            f.write(b"+")
        seen = {i: os.stat(m.M("w%d" % i)).st_mtime_ns for i in range(20)}
        m.remount()
        after = {i: os.stat(m.M("w%d" % i)).st_mtime_ns for i in range(20)}
        self.assertEqual(after, seen, "mtimes reported before unmount are not the stored ones")
        self.assertEqual(after[0], 10**18)


class UsersTest(sfs.TestCase):
    """Invariant 7: run as root for everyone; the kernel checks permissions,
    new objects belong to the caller, setgid dirs and umask apply."""

    NOBODY = 65534

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("public"), b"pub", mode=0o644)
        write_file(L("secret"), b"sec", mode=0o600)
        os.makedirs(L("tmp"))
        os.chmod(L("tmp"), 0o1777)
        os.makedirs(L("sgid"))
        os.chown(L("sgid"), 0, 4242)
        os.chmod(L("sgid"), 0o2777)

    def as_nobody(self, code, *args, umask=0o022):
        return subprocess.run([sfs.python_for_users(), "-c", code] + list(args), user=self.NOBODY,
                              group=self.NOBODY, extra_groups=[], umask=umask,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_other_users(self):
        m = self.mount()
        code = r"""
import os, sys, errno
def try_(f):
    try:
        f(); return 0
    except OSError as e:
        return e.errno
m = sys.argv[1]
print(try_(lambda: open(m + "/public").read()))
print(try_(lambda: open(m + "/secret").read()))
print(try_(lambda: open(m + "/public", "a")))
print(try_(lambda: open(m + "/tmp/mine", "w").write("x")))
print(try_(lambda: os.mkdir(m + "/sgid/sub")))
print(try_(lambda: open(m + "/sgid/file", "w").write("x")))
print(try_(lambda: os.unlink(m + "/public")))
"""
        p = self.as_nobody(code, m.mnt, umask=0o027)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([int(x) for x in p.stdout.split()],
                         [0, errno.EACCES, errno.EACCES, 0, 0, 0, errno.EACCES])
        st = os.stat(m.M("tmp", "mine"))
        self.assertEqual((st.st_uid, st.st_gid), (self.NOBODY, self.NOBODY))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)  # umask 027
        ust = os.stat(self.layers.U("tmp", "mine"))
        self.assertEqual((ust.st_uid, ust.st_gid), (self.NOBODY, self.NOBODY))
        st = os.stat(m.M("sgid", "sub"))
        self.assertEqual((st.st_uid, st.st_gid), (self.NOBODY, 4242))
        self.assertTrue(st.st_mode & stat.S_ISGID)
        st = os.stat(m.M("sgid", "file"))
        self.assertEqual((st.st_uid, st.st_gid), (self.NOBODY, 4242))
        # root's own umask applies too
        old = os.umask(0o077)
        try:
            write_file(m.M("rootfile"), b"r")
            os.mkdir(m.M("rootdir"))
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(m.M("rootfile")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(m.M("rootdir")).st_mode), 0o700)


if __name__ == "__main__":
    sfs.main()
