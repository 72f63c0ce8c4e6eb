"""Live shared layer: changes made directly in the lower directory while
mounted (new, deleted, rewritten in place, replaced by rename; directories
and listings too) show through the mount within the timeout for names
without a local copy; names with a local copy keep the local version."""

import errno
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

TIMEOUT = 1      # -o timeout=
DEADLINE = 3.5   # how long we wait for a change to show


def content_or_errno(p):
    try:
        return read_file(p)
    except OSError as e:
        return e.errno


def stat_errno(p):
    return sfs.errno_of(os.lstat, p)


class LiveLowerTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("d", "old"), b"old content")
        write_file(L("d", "keep"), b"keep")
        write_file(L("d", "local"), b"shared version")
        write_file(L("d", "gone_local"), b"x")
        write_file(L("top"), b"top")

    def m(self):
        return self.mount(timeout=TIMEOUT)

    def edited(self, m):
        """The test changed the shared layer on purpose."""
        m.resnapshot()

    def waitEqual(self, fn, want, what):
        t0 = time.monotonic()
        got = sfs.wait_for(lambda: fn() == want, DEADLINE)
        if not got:
            self.fail("%s: still %r after %.1f s, want %r" % (what, fn(), DEADLINE, want))
        return time.monotonic() - t0

    def test_new_file_appears(self):
        m = self.m()
        L = self.layers.L
        # negative lookups first, so the kernel has cached "no such name"
        self.assertErrno(errno.ENOENT, os.stat, m.M("d", "new"))
        self.assertErrno(errno.ENOENT, os.stat, m.M("newtop"))
        self.assertNotIn("new", os.listdir(m.M("d")))
        write_file(L("d", "new"), b"fresh")
        write_file(L("newtop"), b"fresh top")
        self.edited(m)
        self.waitEqual(lambda: content_or_errno(m.M("d", "new")), b"fresh", "new file")
        self.waitEqual(lambda: content_or_errno(m.M("newtop")), b"fresh top", "new top file")
        self.waitEqual(lambda: "new" in os.listdir(m.M("d")), True, "listing shows new file")

    def test_deleted_file_disappears(self):
        m = self.m()
        L = self.layers.L
        self.assertContent(m.M("d", "old"), "old content")
        self.assertIn("old", os.listdir(m.M("d")))
        os.unlink(L("d", "old"))
        self.edited(m)
        self.waitEqual(lambda: stat_errno(m.M("d", "old")), errno.ENOENT, "deleted file")
        self.waitEqual(lambda: sorted(os.listdir(m.M("d"))), ["gone_local", "keep", "local"],
                       "listing after delete")
        self.assertErrno(errno.ENOENT, open, m.M("d", "old"))

    def test_rewritten_in_place(self):
        m = self.m()
        L = self.layers.L
        self.assertContent(m.M("d", "old"), "old content")   # page cache filled
        fd = os.open(m.M("d", "keep"), os.O_RDONLY)
        try:
            self.assertEqual(os.read(fd, 100), b"keep")
        finally:
            os.close(fd)
        # same length, in place (same inode)
        with open(L("d", "old"), "r+b") as f:
            f.write(b"NEW")
        # different length, truncating (same inode)
        with open(L("d", "keep"), "wb") as f:
            f.write(b"keep, but longer now")
        self.edited(m)
        self.waitEqual(lambda: content_or_errno(m.M("d", "old")), b"NEW content", "same-size edit")
        self.waitEqual(lambda: content_or_errno(m.M("d", "keep")), b"keep, but longer now",
                       "resized edit")
        self.assertEqual(os.stat(m.M("d", "keep")).st_size, len(b"keep, but longer now"))

    def test_rewritten_in_place_same_size_and_mtime(self):
        """`cp -p`, tar and rsync --inplace restore the mtime after writing:
        size and mtime stay the same, only the content (and ctime) change."""
        m = self.m()
        L = self.layers.L
        st = os.stat(L("d", "old"))
        self.assertContent(m.M("d", "old"), "old content")
        with open(L("d", "old"), "r+b") as f:
            f.write(b"OLD")
        os.utime(L("d", "old"), ns=(st.st_atime_ns, st.st_mtime_ns))
        self.edited(m)
        self.waitEqual(lambda: content_or_errno(m.M("d", "old")), b"OLD content",
                       "same size, same mtime edit")

    def test_replaced_by_rename(self):
        m = self.m()
        L = self.layers.L
        self.assertContent(m.M("d", "old"), "old content")
        self.assertContent(m.M("top"), "top")
        write_file(L("d", ".old.tmp"), b"replacement")
        os.rename(L("d", ".old.tmp"), L("d", "old"))
        write_file(L(".top.tmp"), b"top v2")
        os.rename(L(".top.tmp"), L("top"))
        self.edited(m)
        self.waitEqual(lambda: content_or_errno(m.M("d", "old")), b"replacement", "rename-replaced")
        self.waitEqual(lambda: content_or_errno(m.M("top")), b"top v2", "rename-replaced top")
        self.assertEqual(os.stat(m.M("d", "old")).st_size, len(b"replacement"))
        self.assertNotIn(".old.tmp", os.listdir(m.M("d")))

    def test_directories_follow(self):
        m = self.m()
        L = self.layers.L
        self.assertErrno(errno.ENOENT, os.stat, m.M("newdir"))
        os.makedirs(L("newdir", "sub"))
        write_file(L("newdir", "sub", "f"), b"deep")
        shutil.rmtree(L("d"))
        self.edited(m)
        self.waitEqual(lambda: content_or_errno(m.M("newdir", "sub", "f")), b"deep", "new dir tree")
        self.waitEqual(lambda: stat_errno(m.M("d")), errno.ENOENT, "removed dir")
        self.waitEqual(lambda: sorted(os.listdir(m.mnt)), ["newdir", "top"], "root listing")

    def test_directory_renamed_in_shared_layer(self):
        """git checkout renames and deletes whole directories."""
        m = self.m()
        L = self.layers.L
        self.assertEqual(sorted(os.listdir(m.M("d"))), ["gone_local", "keep", "local", "old"])
        self.assertContent(m.M("d", "keep"), "keep")
        os.rename(L("d"), L("d-renamed"))
        self.edited(m)
        self.waitEqual(lambda: stat_errno(m.M("d")), errno.ENOENT, "old dir name")
        self.waitEqual(lambda: content_or_errno(m.M("d-renamed", "keep")), b"keep", "new dir name")
        self.waitEqual(lambda: sorted(os.listdir(m.mnt)), ["d-renamed", "top"], "root listing")

    def test_open_file_deleted_in_shared_layer(self):
        m = self.m()
        L = self.layers.L
        data = os.urandom(1 << 20)
        write_file(L("bigfile"), data)
        self.edited(m)
        self.waitEqual(lambda: stat_errno(m.M("bigfile")), 0, "new big file")
        with open(m.M("bigfile"), "rb") as f:
            head = f.read(4096)
            os.unlink(L("bigfile"))
            self.edited(m)
            rest = f.read()
        self.assertEqual(head + rest, data, "an open file lost its data when deleted below")
        self.waitEqual(lambda: stat_errno(m.M("bigfile")), errno.ENOENT, "deleted big file")

    def test_local_copy_wins(self):
        m = self.m()
        L = self.layers.L
        with open(m.M("d", "local"), "ab") as f:
            f.write(b" + local edit")
        os.unlink(m.M("d", "gone_local"))
        # now change the shared versions under the mount
        with open(L("d", "local"), "wb") as f:
            f.write(b"shared v2")
        write_file(L("d", "gone_local"), b"resurrected?")
        write_file(L("d", "new_beside"), b"nb")
        self.edited(m)
        # wait until an unrelated change is visible, so the timeout passed
        self.waitEqual(lambda: content_or_errno(m.M("d", "new_beside")), b"nb", "sibling")
        time.sleep(TIMEOUT + 0.2)
        self.assertContent(m.M("d", "local"), "shared version + local edit")
        self.assertErrno(errno.ENOENT, os.stat, m.M("d", "gone_local"))
        self.assertNotIn("gone_local", os.listdir(m.M("d")))

    def test_metadata_change_follows(self):
        m = self.m()
        L = self.layers.L
        self.assertEqual(os.stat(m.M("top")).st_mode & 0o777, 0o644)
        os.chmod(L("top"), 0o600)
        os.utime(L("top"), ns=(10**18, 10**18))
        self.edited(m)
        self.waitEqual(lambda: os.stat(m.M("top")).st_mode & 0o777, 0o600, "chmod in lower")
        self.waitEqual(lambda: os.stat(m.M("top")).st_mtime_ns, 10**18, "utime in lower")


if __name__ == "__main__":
    sfs.main()
