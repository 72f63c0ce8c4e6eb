"""Remount stability: after a mix of operations on a tree of a few hundred
objects, every name keeps its st_ino, st_nlink, type, mode and content
across unmount and remount (twice), also with colliding inode numbers on
tmpfs layers."""

import os
import random
import stat
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402


def state(root):
    out = {}
    for rel in [""] + sfs.walk(root):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        d = (st.st_ino, st.st_nlink, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
             st.st_uid, st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else None)
        if stat.S_ISREG(st.st_mode):
            d += (st.st_size, sfs.sha_file(p))
        elif stat.S_ISLNK(st.st_mode):
            d += (os.readlink(p),)
        out[rel] = d
    return out


class RemountTest(sfs.TestCase):

    def build(self):
        rnd = random.Random(42)
        L = self.layers.L
        for i in range(300):
            d = "pkg%d/sub%d" % (i % 10, i % 3)
            write_file(L(d, "f%d" % i), os.urandom(rnd.choice((0, 10, 5000))))
        for i in range(0, 300, 30):  # shared-layer hardlinks
            d = "pkg%d/sub%d" % (i % 10, i % 3)
            os.link(L(d, "f%d" % i), L(d, "f%d.hl" % i))
        for i in range(10):
            os.symlink("sub0", L("pkg%d" % i, "link"))

    def exercise(self, m):
        M = m.M
        for i in range(300):
            d = "pkg%d/sub%d" % (i % 10, i % 3)
            p = M(d, "f%d" % i)
            k = i % 12
            if k == 0:
                os.chmod(p, 0o600)            # metadata copy-up
            elif k == 1:
                with open(p, "ab") as f:     # data copy-up
                    f.write(b"+")
            elif k == 2:
                os.link(p, M(d, "f%d.link" % i))
            elif k == 3:
                os.unlink(p)
            elif k == 4:
                os.rename(p, M(d, "f%d.renamed" % i))
            elif k == 5:
                os.chown(p, 1000, 1000)
            elif k == 6:
                os.utime(p, ns=(10**18, 10**18))
        for i in range(100):
            write_file(M("new", "n%d" % (i % 7), "file%d" % i), b"new%d" % i)
            if i % 10 == 0:
                os.link(M("new", "n%d" % (i % 7), "file%d" % i), M("new", "link%d" % i))
        os.rename(M("pkg9"), M("pkg9-renamed"))
        os.mkfifo(M("new", "fifo"))

    def check(self, opts):
        self.build()
        m = self.mount(**opts)
        self.exercise(m)
        s1 = state(m.mnt)
        inos = [v[0] for v in s1.values()]
        # hardlinks share numbers, nothing else does
        self.assertEqual(len(set(inos)), len(set((v[0], v[2]) for v in s1.values())))
        for round_ in range(2):
            m.remount()
            s2 = state(m.mnt)
            self.assertEqual(s2, s1, "round %d:\n%s" % (round_, sfs.diff_views(s1, s2, "before", "after")))

    def test_remount_default(self):
        self.check({})

    def test_remount_metacopy_off(self):
        self.check({"metacopy": "off"})


class RemountTmpfsTest(RemountTest):
    """Same, with the layers on two tmpfs mounts (colliding inode numbers)."""
    TMPFS = True

    test_remount_metacopy_off = None  # the ext4 variant covers it


if __name__ == "__main__":
    sfs.main()
