"""st_ino and st_dev: unique across layers on different filesystems with
colliding inode numbers, unchanged by copy-up, one st_dev for the mount."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402


def populate(root, prefix, n=60):
    """Same shape, same creation order: on fresh tmpfs mounts the inode
    numbers come out equal."""
    for i in range(n):
        if i % 10 == 0:
            os.makedirs(os.path.join(root, "%s_dir%d" % (prefix, i)))
        else:
            write_file(os.path.join(root, "%s_f%d" % (prefix, i)), b"%s%d" % (prefix.encode(), i))


def all_stats(root):
    out = {"": os.lstat(root)}
    for rel in sfs.walk(root):
        out[rel] = os.lstat(os.path.join(root, rel))
    return out


class CollidingInodesTest(sfs.TestCase):
    NLOWER = 2
    TMPFS = True

    def test_unique_st_ino_across_filesystems(self):
        populate(self.layers.lowers[0], "a")
        populate(self.layers.lowers[1], "b")
        populate(self.layers.upper, "u")
        # the same name in every layer: the upper one wins, one number
        for d in (self.layers.lowers[0], self.layers.lowers[1], self.layers.upper):
            write_file(os.path.join(d, "common", "x"), b"x")
        real = [{st.st_ino for st in all_stats(d).values()}
                for d in self.layers.lowers + [self.layers.upper]]
        self.assertTrue(real[0] & real[1] & real[2],
                        "test setup: expected colliding inode numbers on the tmpfs layers")
        m = self.mount()
        sts = all_stats(m.mnt)
        self.assertEqual(len(sts), 1 + 3 * 60 + 2)
        by_ino = {}
        for rel, st in sts.items():
            by_ino.setdefault(st.st_ino, []).append(rel)
        dups = {i: r for i, r in by_ino.items() if len(r) > 1}
        self.assertEqual(dups, {}, "different files share an st_ino")
        self.assertEqual({st.st_dev for st in sts.values()}, {os.stat(m.mnt).st_dev})
        # d_ino in listings agrees with stat
        for dp, dns, fns in os.walk(m.mnt):
            with os.scandir(dp) as it:
                for e in it:
                    self.assertEqual(e.inode(), os.lstat(e.path).st_ino, e.path)
        # new files created through the mount do not collide either
        for i in range(40):
            write_file(m.M("new%d" % i), b"n")
        sts = all_stats(m.mnt)
        self.assertEqual(len({st.st_ino for st in sts.values()}), len(sts))


class InodeStabilityTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("d", "f"), b"data")
        write_file(L("d", "g"), b"gdata")
        write_file(L("d", "h"), b"hdata")
        write_file(L("d", "sub", "k"), b"k")
        os.symlink("f", L("d", "sl"))
        os.mkfifo(L("d", "fifo"))

    def test_same_ino_after_copy_up(self):
        m = self.mount()
        M = m.M
        names = ["d", "d/f", "d/g", "d/h", "d/sub", "d/sub/k", "d/sl", "d/fifo"]
        before = {n: os.lstat(M(n)).st_ino for n in names}
        os.chmod(M("d", "f"), 0o600)                  # metadata copy-up
        with open(M("d", "g"), "ab") as f:            # data copy-up
            f.write(b"+")
        os.truncate(M("d", "h"), 1)
        write_file(M("d", "sub", "new"), b"n")        # copies the dirs up
        os.lchown(M("d", "sl"), 3, 3)
        os.chmod(M("d", "fifo"), 0o600)
        after = {n: os.lstat(M(n)).st_ino for n in names}
        self.assertEqual(after, before)
        for n in ("d/f", "d/g", "d/h", "d/sub", "d/sl", "d/fifo"):
            self.assertTrue(os.path.lexists(self.layers.U(n)), n + " not copied up")
        m.remount()
        self.assertEqual({n: os.lstat(M(n)).st_ino for n in names}, before)
        self.assertEqual(len(set(before.values())), len(before))

    def test_same_ino_through_open_fd(self):
        """An fd opened before the copy-up reports the same st_ino."""
        m = self.mount()
        fd = os.open(m.M("d", "f"), os.O_RDONLY)
        try:
            ino = os.fstat(fd).st_ino
            with open(m.M("d", "f"), "ab") as f:
                f.write(b"!")
            self.assertEqual(os.stat(m.M("d", "f")).st_ino, ino)
            self.assertEqual(os.fstat(fd).st_ino, ino)
        finally:
            os.close(fd)

    def test_inode_number_reuse(self):
        """ext4 hands a freed inode number to the next new object at once:
        a new object must never be taken for the deleted one (type, content,
        attributes), whatever the kernel still remembers of the old one."""
        m = self.mount()
        for i in range(60):
            f = m.M("victim%d" % i)
            write_file(f, b"old file %d" % i)
            os.chmod(f, 0o600)
            os.stat(f)
            os.unlink(f)
            d = m.M("newdir%d" % i)
            os.mkdir(d)                       # likely gets the same inode number
            self.assertTrue(os.path.isdir(d), d)
            os.mkdir(os.path.join(d, "sub"))
            write_file(os.path.join(d, "sub", "x"), b"x")
            g = m.M("newfile%d" % i)
            write_file(g, b"new %d" % i)
            self.assertContent(g, b"new %d" % i)
            self.assertEqual(os.stat(g).st_mode & 0o777, 0o644, g)
            os.unlink(g)
            os.symlink("target%d" % i, g)
            self.assertEqual(os.readlink(g), "target%d" % i)
        # also when the old object is still open
        fds = []
        try:
            for i in range(20):
                f = m.M("open%d" % i)
                write_file(f, b"open %d" % i)
                fds.append(os.open(f, os.O_RDONLY))
                os.unlink(f)
                write_file(m.M("after%d" % i), b"after %d" % i)
                self.assertContent(m.M("after%d" % i), b"after %d" % i)
                self.assertEqual(os.pread(fds[-1], 100, 0), b"open %d" % i)
        finally:
            for fd in fds:
                os.close(fd)

    def test_one_st_dev(self):
        m = self.mount()
        write_file(m.M("upper_only"), b"u")
        os.mkdir(m.M("upper_dir"))
        os.symlink("x", m.M("upper_link"))
        os.chmod(m.M("d", "g"), 0o600)
        with open(m.M("d", "h"), "ab") as f:
            f.write(b"!")
        devs = {}
        for rel in ["", "upper_only", "upper_dir", "upper_link", "d", "d/f", "d/g",
                    "d/h", "d/sub", "d/sub/k", "d/sl", "d/fifo"]:
            devs[rel] = os.lstat(m.M(rel)).st_dev
        self.assertEqual(len(set(devs.values())), 1, devs)
        # and it is the mount's, not a layer's
        self.assertNotEqual(devs[""], os.stat(self.layers.upper).st_dev)
        fd = os.open(m.M("d", "f"), os.O_RDONLY)
        try:
            self.assertEqual(os.fstat(fd).st_dev, devs[""])
        finally:
            os.close(fd)


if __name__ == "__main__":
    sfs.main()
