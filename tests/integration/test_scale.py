"""More objects than file descriptors: the kernel keeps every looked-up
node until it forgets it, so a daemon that holds one fd per node runs out
(RLIMIT_NOFILE is often 1024..20000).  Walk, stat, read and modify a tree
larger than the process's fd limit, and keep many files open at once."""

import os
import resource
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402

NDIRS = 40


class ScaleTest(sfs.TestCase):

    def test_tree_larger_than_fd_limit(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = hard if hard != resource.RLIM_INFINITY else 65536
        n = min(max(limit + 5000, 25000), 70000)
        per = n // NDIRS
        L = self.layers.L
        for d in range(NDIRS):
            os.makedirs(L("t", "d%02d" % d))
            for i in range(per):
                with open(L("t", "d%02d" % d, "f%05d" % i), "wb") as f:
                    f.write(b"%d/%d" % (d, i))
        total = per * NDIRS
        m = self.mount()
        seen = 0
        inos = set()
        for d in range(NDIRS):
            dp = m.M("t", "d%02d" % d)
            with os.scandir(dp) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    inos.add(st.st_ino)
                    seen += 1
        self.assertEqual(seen, total)
        self.assertEqual(len(inos), total)
        # read some, modify some (copy-up), create some: all still work
        for d in range(NDIRS):
            for i in range(0, per, 50):
                p = m.M("t", "d%02d" % d, "f%05d" % i)
                self.assertEqual(sfs.read_file(p), b"%d/%d" % (d, i))
                if i % 100 == 0:
                    with open(p, "ab") as f:
                        f.write(b"+")
            sfs.write_file(m.M("t", "d%02d" % d, "new"), b"new")
        self.assertEqual(sfs.read_file(m.M("t", "d00", "f00000")), b"0/0+")
        # many open files at once through the mount
        fds = []
        try:
            for i in range(min(2000, soft - 100)):
                fds.append(os.open(m.M("t", "d%02d" % (i % NDIRS), "f%05d" % (i // NDIRS + 1)),
                                   os.O_RDONLY))
            for i, fd in enumerate(fds[::97]):
                self.assertTrue(os.read(fd, 10))
        finally:
            for fd in fds:
                os.close(fd)
        # a second full pass after all that
        seen = sum(len(os.listdir(m.M("t", "d%02d" % d))) for d in range(NDIRS))
        self.assertEqual(seen, total + NDIRS)


if __name__ == "__main__":
    sfs.main()
