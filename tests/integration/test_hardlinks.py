"""Hardlinks: link() between any two names of the mount (also from the
shared layer), one st_ino and a correct st_nlink for all names of a file,
writes through one name read through the other; shared-layer hardlinks
stay one file after copy-up, write and remount."""

import errno
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402


class HardlinkTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("src", "lonely"), b"lonely")
        write_file(L("src", "other"), b"other")
        # a pair hardlinked inside the shared layer, in two directories
        write_file(L("p", "h1"), b"pair")
        os.makedirs(L("q"))
        os.link(L("p", "h1"), L("q", "h2"))
        # and a triple in one directory
        write_file(L("t", "x1"), b"triple")
        os.link(L("t", "x1"), L("t", "x2"))
        os.link(L("t", "x1"), L("t", "x3"))

    def assertOneFile(self, paths, nlink, content=None):
        sts = [os.stat(p) for p in paths]
        inos = {st.st_ino for st in sts}
        self.assertEqual(len(inos), 1, "names %s have st_ino %s" % (
            paths, [st.st_ino for st in sts]))
        self.assertEqual([st.st_nlink for st in sts], [nlink] * len(paths),
                         "st_nlink of %s" % paths)
        self.assertEqual(len({st.st_dev for st in sts}), 1)
        if content is not None:
            for p in paths:
                self.assertContent(p, content)
        return sts[0].st_ino

    def test_link_local_files(self):
        m = self.mount()
        write_file(m.M("a"), b"one")
        os.makedirs(m.M("dir"))
        os.link(m.M("a"), m.M("dir", "b"))
        os.link(m.M("a"), m.M("src", "c"))  # into a shared-layer directory
        self.assertOneFile([m.M("a"), m.M("dir", "b"), m.M("src", "c")], 3, b"one")
        with open(m.M("dir", "b"), "r+b") as f:
            f.write(b"ONE")
        self.assertContent(m.M("a"), "ONE")
        self.assertContent(m.M("src", "c"), "ONE")
        os.chmod(m.M("src", "c"), 0o600)
        self.assertEqual(os.stat(m.M("a")).st_mode & 0o777, 0o600)
        os.unlink(m.M("a"))
        self.assertOneFile([m.M("dir", "b"), m.M("src", "c")], 2, b"ONE")
        os.unlink(m.M("dir", "b"))
        self.assertOneFile([m.M("src", "c")], 1, b"ONE")

    def test_link_from_shared_layer(self):
        m = self.mount()
        before = os.stat(m.M("src", "lonely")).st_ino
        os.link(m.M("src", "lonely"), m.M("src", "lonely2"))
        os.makedirs(m.M("elsewhere"))
        os.link(m.M("src", "lonely"), m.M("elsewhere", "lonely3"))
        names = [m.M("src", "lonely"), m.M("src", "lonely2"), m.M("elsewhere", "lonely3")]
        ino = self.assertOneFile(names, 3, b"lonely")
        self.assertEqual(ino, before, "st_ino changed by link()")
        # write through the new name, read through the old one
        with open(m.M("elsewhere", "lonely3"), "ab") as f:
            f.write(b"+w")
        for p in names:
            self.assertContent(p, "lonely+w")
        m.remount()
        self.assertEqual(self.assertOneFile(names, 3, b"lonely+w"), before)
        os.unlink(m.M("src", "lonely"))
        self.assertOneFile(names[1:], 2, b"lonely+w")

    def test_link_errors(self):
        m = self.mount()
        self.assertErrno(errno.EEXIST, os.link, m.M("src", "lonely"), m.M("src", "other"))
        self.assertErrno(errno.EEXIST, os.link, m.M("src", "lonely"), m.M("p", "h1"))
        self.assertErrno(errno.ENOENT, os.link, m.M("src", "none"), m.M("x"))
        self.assertErrno(errno.EPERM, os.link, m.M("src"), m.M("srclink"))
        # a name deleted through the mount is free for a link
        os.unlink(m.M("src", "other"))
        os.link(m.M("src", "lonely"), m.M("src", "other"))
        self.assertOneFile([m.M("src", "lonely"), m.M("src", "other")], 2, b"lonely")

    def test_shared_pair_is_one_file(self):
        m = self.mount()
        self.assertOneFile([m.M("p", "h1"), m.M("q", "h2")], 2, b"pair")
        self.assertOneFile([m.M("t", "x1"), m.M("t", "x2"), m.M("t", "x3")], 3, b"triple")

    def _pair_write(self, first, second):
        m = self.mount()
        names = {"h1": m.M("p", "h1"), "h2": m.M("q", "h2")}
        ino = self.assertOneFile(list(names.values()), 2, b"pair")
        with open(names[first], "ab") as f:
            f.write(b"+" + first.encode())
        self.assertContent(names[second], "pair+" + first)
        self.assertEqual(self.assertOneFile(list(names.values()), 2), ino)
        # metadata through the other name
        os.chmod(names[second], 0o600)
        self.assertEqual(os.stat(names[first]).st_mode & 0o777, 0o600)
        m.remount()
        self.assertEqual(self.assertOneFile(list(names.values()), 2, "pair+" + first), ino)
        # after remount, write through the other name first
        with open(names[second], "ab") as f:
            f.write(b"+" + second.encode())
        self.assertContent(names[first], "pair+%s+%s" % (first, second))
        m.remount()
        self.assertEqual(self.assertOneFile(list(names.values()), 2,
                                            "pair+%s+%s" % (first, second)), ino)
        self.assertEqual(os.stat(names[first]).st_mode & 0o777, 0o600)

    def test_shared_pair_write_h1_read_h2(self):
        self._pair_write("h1", "h2")

    def test_shared_pair_write_h2_read_h1(self):
        self._pair_write("h2", "h1")

    def test_shared_pair_metadata_copy_up(self):
        """chmod (metadata-only copy-up) of one name, then a write through
        the other name; also after a remount in between."""
        m = self.mount()
        os.chmod(m.M("t", "x2"), 0o604)
        names = [m.M("t", "x1"), m.M("t", "x2"), m.M("t", "x3")]
        ino = self.assertOneFile(names, 3, b"triple")
        m.remount()
        self.assertEqual(self.assertOneFile(names, 3, b"triple"), ino)
        with open(names[2], "ab") as f:
            f.write(b"!")
        self.assertEqual(self.assertOneFile(names, 3, b"triple!"), ino)
        self.assertEqual(os.stat(names[0]).st_mode & 0o777, 0o604)
        # unlink one shared name: the others see the new count
        os.unlink(names[0])
        self.assertEqual(self.assertOneFile(names[1:], 2, b"triple!"), ino)
        m.remount()
        self.assertEqual(self.assertOneFile(names[1:], 2, b"triple!"), ino)
        self.assertErrno(errno.ENOENT, os.stat, names[0])

    def test_shared_pair_name_removed_without_copy_up(self):
        """One name of a shared-layer pair goes away (unlink, rename over
        it) before anything was copied up: the other name counts one link."""
        m = self.mount()
        h1, h2 = m.M("p", "h1"), m.M("q", "h2")
        ino = self.assertOneFile([h1, h2], 2, b"pair")
        os.unlink(h1)
        self.assertEqual(self.assertOneFile([h2], 1, b"pair"), ino)
        # rename over one name of the triple
        x1, x2, x3 = m.M("t", "x1"), m.M("t", "x2"), m.M("t", "x3")
        ino3 = self.assertOneFile([x1, x2, x3], 3, b"triple")
        os.rename(m.M("src", "other"), x1)
        self.assertEqual(self.assertOneFile([x2, x3], 2, b"triple"), ino3)
        # and after a copy-up of the remaining names
        with open(x3, "ab") as f:
            f.write(b"!")
        os.unlink(x2)
        self.assertEqual(self.assertOneFile([x3], 1, b"triple!"), ino3)
        m.remount()
        self.assertEqual(self.assertOneFile([h2], 1, b"pair"), ino)
        self.assertEqual(self.assertOneFile([x3], 1, b"triple!"), ino3)
        self.assertContent(x1, "other")

    def test_shared_pair_rename_and_link(self):
        m = self.mount()
        os.rename(m.M("p", "h1"), m.M("h1moved"))
        os.link(m.M("q", "h2"), m.M("h3"))
        names = [m.M("h1moved"), m.M("q", "h2"), m.M("h3")]
        ino = self.assertOneFile(names, 3, b"pair")
        with open(m.M("h3"), "ab") as f:
            f.write(b"3")
        self.assertContent(m.M("h1moved"), "pair3")
        m.remount()
        self.assertEqual(self.assertOneFile(names, 3, b"pair3"), ino)


if __name__ == "__main__":
    sfs.main()
