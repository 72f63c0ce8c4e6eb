"""Metadata-only copy-up (default): link, chmod, chown, utime of a
shared-layer file copy only metadata (trusted.overlay.metacopy on the local
file, no data blocks), data still comes from the shared layer (also after
an edit there), and the first open for write copies the data.  With
-o metacopy=off the copy is full at once."""

import errno
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

XA = "trusted.overlay.metacopy"
SIZE = 256 * 1024

OPS = {
    "link": lambda m, p: os.link(p, p + ".lnk"),
    "chmod": lambda m, p: os.chmod(p, 0o600),
    "chown": lambda m, p: os.chown(p, 4321, 4321),
    "utime": lambda m, p: os.utime(p, ns=(10**18, 10**18)),
}


def has_xattr(p, name):
    try:
        os.getxattr(p, name, follow_symlinks=False)
        return True
    except OSError as e:
        if e.errno == errno.ENODATA:
            return False
        raise


def holds_data(p):
    """Does the local file have any data extent?  (st_blocks also counts an
    external xattr block, so ask SEEK_DATA.)"""
    fd = os.open(p, os.O_RDONLY)
    try:
        os.lseek(fd, 0, sfs.SEEK_DATA)
        return True
    except OSError as e:
        if e.errno == errno.ENXIO:
            return False
        raise
    finally:
        os.close(fd)


class MetacopyTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        self.data = {}
        for op in OPS:
            d = os.urandom(SIZE)
            self.data[op] = d
            write_file(self.layers.L("files", op), d)

    def assertMetaOnly(self, op):
        u = self.layers.U("files", op)
        self.assertTrue(os.path.exists(u), "%s: nothing in the local layer" % op)
        self.assertTrue(has_xattr(u, XA), "%s: local copy has no %s (xattrs: %s)" % (
            op, XA, list(sfs.xattrs_of(u))))
        self.assertFalse(holds_data(u), "%s: data was copied (%d blocks)" % (
            op, os.stat(u).st_blocks))

    def assertFullCopy(self, op, data):
        u = self.layers.U("files", op)
        self.assertFalse(has_xattr(u, XA), "%s: %s still set" % (op, XA))
        self.assertEqual(read_file(u), data)
        self.assertTrue(holds_data(u) or not data)

    def test_metadata_ops_copy_metadata_only(self):
        m = self.mount(timeout=1)
        for op, fn in OPS.items():
            p = m.M("files", op)
            fn(m, p)
            self.assertMetaOnly(op)
            self.assertEqual(read_file(p), self.data[op], op)
            self.assertEqual(os.stat(p).st_size, SIZE, op)
        self.assertEqual(os.stat(m.M("files", "chmod")).st_mode & 0o777, 0o600)
        st = os.stat(m.M("files", "chown"))
        self.assertEqual((st.st_uid, st.st_gid), (4321, 4321))
        self.assertEqual(os.stat(m.M("files", "utime")).st_mtime_ns, 10**18)
        self.assertEqual(os.stat(m.M("files", "link")).st_nlink, 2)
        self.assertEqual(read_file(m.M("files", "link.lnk")), self.data["link"])
        # private xattr is not visible through the mount
        for op in OPS:
            self.assertNotIn(XA, os.listxattr(m.M("files", op)))
        m.remount()
        for op in OPS:
            self.assertEqual(read_file(m.M("files", op)), self.data[op], op)
            self.assertMetaOnly(op)
        self.assertEqual(os.stat(m.M("files", "chmod")).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(m.M("files", "utime")).st_mtime_ns, 10**18)

    def test_lower_edit_shows_through_metacopy(self):
        m = self.mount(timeout=1)
        for op, fn in OPS.items():
            fn(m, m.M("files", op))
            self.assertEqual(read_file(m.M("files", op)), self.data[op])  # page cache
        # same-size edit directly in the shared layer, before any write
        for op in OPS:
            with open(self.layers.L("files", op), "r+b") as f:
                f.seek(1000)
                f.write(b"EDITED-IN-SHARED-LAYER")
            d = bytearray(self.data[op])
            d[1000:1022] = b"EDITED-IN-SHARED-LAYER"
            self.data[op] = bytes(d)
        m.resnapshot()
        for op in OPS:
            p = m.M("files", op)
            ok = sfs.wait_for(lambda: read_file(p) == self.data[op], 3.5)
            self.assertTrue(ok, "%s: the shared-layer edit does not show through" % op)
        self.assertEqual(read_file(m.M("files", "link.lnk")), self.data["link"])

    def test_lower_replaced_by_rename_shows_through_metacopy(self):
        """Editors and git replace files by rename: the metadata-only copy
        follows the new shared file (same size here), keeping its own
        metadata."""
        m = self.mount(timeout=1)
        p = m.M("files", "chmod")
        os.chmod(p, 0o600)
        self.assertMetaOnly("chmod")
        self.assertEqual(read_file(p), self.data["chmod"])
        new = os.urandom(SIZE)
        write_file(self.layers.L("files", ".chmod.tmp"), new)
        os.rename(self.layers.L("files", ".chmod.tmp"), self.layers.L("files", "chmod"))
        m.resnapshot()
        ok = sfs.wait_for(lambda: read_file(p) == new, 3.5)
        self.assertTrue(ok, "the replaced shared file does not show through the metadata copy")
        self.assertEqual(os.stat(p).st_mode & 0o777, 0o600)
        fd = os.open(p, os.O_WRONLY)
        os.close(fd)
        self.assertFullCopy("chmod", new)

    def test_open_for_write_copies_data(self):
        m = self.mount()
        for op, fn in OPS.items():
            p = m.M("files", op)
            fn(m, p)
            self.assertMetaOnly(op)
            fd = os.open(p, os.O_WRONLY)
            os.close(fd)
            self.assertFullCopy(op, self.data[op])
            self.assertEqual(read_file(p), self.data[op])
        # the hardlink's other name sees the full copy too
        self.assertEqual(read_file(m.M("files", "link.lnk")), self.data["link"])
        with open(m.M("files", "link.lnk"), "ab") as f:
            f.write(b"!")
        self.assertEqual(read_file(m.M("files", "link")), self.data["link"] + b"!")
        # metadata kept by the data copy
        self.assertEqual(os.stat(m.M("files", "chmod")).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(m.M("files", "utime")).st_mtime_ns, 10**18)
        st = os.stat(m.M("files", "chown"))
        self.assertEqual((st.st_uid, st.st_gid), (4321, 4321))

    def test_truncate_and_write_after_metacopy(self):
        m = self.mount()
        p = m.M("files", "chmod")
        os.chmod(p, 0o640)
        self.assertMetaOnly("chmod")
        os.truncate(p, 100)
        self.assertEqual(read_file(p), self.data["chmod"][:100])
        self.assertFullCopy("chmod", self.data["chmod"][:100])
        q = m.M("files", "utime")
        os.utime(q, ns=(10**18, 10**18))
        with open(q, "r+b") as f:
            f.seek(SIZE - 4)
            f.write(b"TAIL")
        self.assertEqual(read_file(q), self.data["utime"][:-4] + b"TAIL")
        self.assertFullCopy("utime", self.data["utime"][:-4] + b"TAIL")

    def test_trunc_open_of_metacopy(self):
        m = self.mount()
        p = m.M("files", "chown")
        os.chown(p, 4321, 4321)
        self.assertMetaOnly("chown")
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
        self.assertEqual(read_file(p), b"x")
        self.assertFullCopy("chown", b"x")
        st = os.stat(p)
        self.assertEqual((st.st_uid, st.st_gid, st.st_size), (4321, 4321, 1))
        m.remount()
        self.assertEqual(read_file(p), b"x")

    def test_metacopy_off_copies_everything(self):
        m = self.mount(metacopy="off")
        for op, fn in OPS.items():
            fn(m, m.M("files", op))
            self.assertFullCopy(op, self.data[op])
            self.assertEqual(read_file(m.M("files", op)), self.data[op])
        self.assertEqual(read_file(self.layers.U("files", "link.lnk")), self.data["link"])
        self.assertEqual(os.stat(self.layers.U("files", "link")).st_ino,
                         os.stat(self.layers.U("files", "link.lnk")).st_ino)


if __name__ == "__main__":
    sfs.main()
