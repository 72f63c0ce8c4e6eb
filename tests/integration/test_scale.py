"""More objects than file descriptors: the kernel keeps every looked-up
node until it forgets it, so a daemon that holds one fd per node runs out
(RLIMIT_NOFILE is often 1024..20000).  Walk, stat, read and modify a tree
larger than the process's fd limit, and keep many files open at once."""

import json
import os
import resource
import subprocess
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

    # -- a daemon whose fd limit is below the number of directories

    FD_LIMIT = 512

    def daemon_fd_limit(self, m):
        with open("/proc/%d/limits" % m.proc.pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        self.fail("no fd limit in /proc/%d/limits" % m.proc.pid)

    def low_limit_mount(self, *extra):
        m = self.mount(fd_limit=self.FD_LIMIT, extra_args=extra)
        limit = self.daemon_fd_limit(m)
        if limit > self.FD_LIMIT:
            # Root with CAP_SYS_RESOURCE lifts its limit to fs.nr_open.
            self.skipTest("the daemon raised its fd limit to %d" % limit)
        return m

    def check_many_dirs(self, *extra):
        """Directories hold an fd each (merged ones two); with several
        times more directories than fds (local-only, shared-only and
        merged), every create, walk, read and remove still succeeds: the
        kernel is asked to forget cold nodes (reclaim.c) instead of the
        daemon failing with EMFILE."""
        n = self.FD_LIMIT * 3
        for i in range(n):  # shared directories, some merged below
            sfs.write_file(self.layers.L("shared", "s%04d" % i, "f"), b"s%d" % i)
        m = self.low_limit_mount(*extra)
        # Names in use must survive: a working directory and a mount
        # point, both idle (no requests) and so the least recently used.
        os.makedirs(m.M("keep", "cwd"))
        os.makedirs(m.M("keep", "mnt"))
        other = os.path.join(self.layers.base, "bind-src")
        os.makedirs(other, exist_ok=True)
        sfs.run(["mount", "--bind", other, m.M("keep", "mnt")])
        self.addCleanup(sfs.run, ["umount", "-l", m.M("keep", "mnt")], check=False)
        idle = subprocess.Popen(["sleep", "300"], cwd=m.M("keep", "cwd"))
        self.addCleanup(idle.wait)
        self.addCleanup(idle.kill)
        for i in range(n):
            os.makedirs(m.M("local", "l%04d" % i, "sub"))
            sfs.write_file(m.M("local", "l%04d" % i, "sub", "f"), b"l%d" % i)
            if i % 2 == 0:  # merge: a local file in a shared directory
                sfs.write_file(m.M("shared", "s%04d" % i, "g"), b"g%d" % i)
        found = {}
        for top in ("local", "shared"):
            for root, dirs, files in os.walk(m.M(top)):
                for f in files:
                    p = os.path.join(root, f)
                    found[os.path.relpath(p, m.M())] = sfs.read_file(p)
        self.assertEqual(len(found), 2 * n + n // 2)
        self.assertEqual(found["local/l0007/sub/f"], b"l7")
        self.assertEqual(found["shared/s0008/g"], b"g8")
        self.assertEqual(found["shared/s%04d/f" % (n - 1)], b"s%d" % (n - 1))
        # what the kernel was made to forget is found again by name
        self.assertEqual(sfs.read_file(m.M("local", "l0000", "sub", "f")), b"l0")
        self.assertFalse(os.path.exists(self.layers.L("shared", "s0000", "g")))
        self.assertEqual(sfs.read_file(self.layers.U("shared", "s0000", "g")), b"g0")
        sfs.run(["rm", "-rf", m.M("local")])
        self.assertFalse(os.path.exists(self.layers.U("local")))
        self.assertEqual(os.readlink("/proc/%d/cwd" % idle.pid), m.M("keep", "cwd"))
        st = sfs.run([sfs.binary(), "--status", "--format=json", m.mnt]).stdout
        self.assertGreater(json.loads(st)["fd_reclaims"], 0, "--status counts the reclaims")
        self.assertTrue(sfs.is_mounted(m.M("keep", "mnt")))
        sfs.run(["umount", m.M("keep", "mnt")])
        idle.kill()
        idle.wait()
        m.umount()

    def test_more_directories_than_fds(self):
        self.check_many_dirs()

    def test_more_directories_than_fds_one_thread(self):
        self.check_many_dirs("-s")


if __name__ == "__main__":
    sfs.main()
