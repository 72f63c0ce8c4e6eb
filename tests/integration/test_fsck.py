"""scratchfs --fsck [--repair]: a local layer written by scratchfs or by
kernel overlayfs checks clean; layers broken on purpose in each way are
found (one line each, exit 4), repaired where that needs no guess (exit 1,
then clean), and left alone otherwise; a mounted layer is refused; the
leftovers of a kill -9 during copy-up are found and removed."""

import errno
import fcntl
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402

XA = "trusted."


def fsck(layers, repair=False):
    args = [sfs.binary(), "--fsck"] + (["--repair"] if repair else [])
    args += ["-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (
        ":".join(layers.lowers), layers.upper, layers.work)]
    return sfs.run(args, check=False)


def lines(p, kind):
    return [l for l in p.stdout.splitlines() if l.startswith(kind + ":")]


class FsckTest(sfs.TestCase):

    def build_shared(self):
        L = self.layers.L
        write_file(L("dir/a.txt"), b"aaaa")
        write_file(L("dir/sub/b.txt"), b"bbbb")
        write_file(L("meta.txt"), b"metadata only\n")
        write_file(L("gone.txt"), b"x")
        write_file(L("hl"), b"hardlinked\n")
        os.link(L("hl"), L("hl2"))
        write_file(L("data.txt"), b"data\n")

    def exercise(self, M):
        os.chmod(M("meta.txt"), 0o600)               # metadata-only copy
        os.link(M("hl"), M("hl.new"))                # index entry
        os.unlink(M("gone.txt"))                     # whiteout
        os.rename(M("dir"), M("dir2"))               # redirect or copied tree
        os.mkdir(M("gone.txt"))                      # over a whiteout: opaque
        with open(M("data.txt"), "ab") as f:         # data copy-up
            f.write(b"more\n")
        write_file(M("new/file"), b"new")

    def scratchfs_layer(self):
        self.build_shared()
        m = self.mount()
        self.exercise(m.M)
        m.umount()

    def assertClean(self, p):
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(lines(p, "problem"), [], p.stdout)

    def assertFound(self, p, where, words, code=4):
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        hits = [l for l in p.stdout.splitlines() if where in l and
                all(w in l for w in words)]
        self.assertEqual(len(hits), 1, p.stdout)
        return hits[0]

    # ---------------------------------------------------------------- clean

    def test_scratchfs_layer_checks_clean(self):
        self.scratchfs_layer()
        self.assertTrue(os.listdir(os.path.join(self.layers.work, "index")))
        self.assertClean(fsck(self.layers))

    def test_kernel_layer_checks_clean(self):
        self.build_shared()
        lw = self.layers
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=%s,upperdir=%s,workdir=%s,index=on,redirect_dir=on,"
                        "metacopy=on" % (lw.lower, lw.upper, lw.work), lw.mnt], check=True)
        try:
            self.exercise(lw.M)
            p = fsck(lw)
            self.assertEqual(p.returncode, 8, "a mounted layer must be refused")
            self.assertIn("in use", p.stderr)
        finally:
            subprocess.run(["umount", lw.mnt], check=True)
        self.assertClean(fsck(lw))

    # --------------------------------------------------------------- broken

    def repair_cycle(self, where, words, fixed=True):
        """Found -> --repair -> clean (fixed) or still found (not)."""
        lw = self.layers
        self.assertFound(fsck(lw), where, ["problem:"] + words)
        p = fsck(lw, repair=True)
        if fixed:
            self.assertFound(p, where, ["repaired:"] + words, code=1)
            self.assertClean(fsck(lw))
        else:
            self.assertFound(p, where, ["problem:"] + words, code=4)
        return p

    def test_workdir_leftover(self):
        self.scratchfs_layer()
        write_file(os.path.join(self.layers.work, "work", "#1f"), b"half a copy")
        self.repair_cycle("workdir/work/#1f", ["interrupted copy-up"])
        self.assertEqual(os.listdir(os.path.join(self.layers.work, "work")), [])

    def test_stale_wh_marker(self):
        self.scratchfs_layer()
        write_file(self.layers.U(".wh.data.txt"), b"")
        self.repair_cycle("upperdir/.wh.data.txt", ["stale whiteout"])
        self.assertTrue(os.path.exists(self.layers.U("data.txt")))

    def test_orphan_whiteout_is_a_note(self):
        self.scratchfs_layer()
        sfs.make_whiteout(self.layers.U("never-was"))
        p = fsck(self.layers)
        self.assertClean(p)
        self.assertEqual(len([l for l in lines(p, "note") if "never-was" in l]), 1, p.stdout)

    def test_opaque_on_a_file(self):
        self.scratchfs_layer()
        os.setxattr(self.layers.U("data.txt"), XA + "overlay.opaque", b"y")
        self.repair_cycle("upperdir/data.txt", ["opaque marker on a file"])
        self.assertNotIn(XA + "overlay.opaque", os.listxattr(self.layers.U("data.txt")))

    def test_metacopy_without_data(self):
        self.scratchfs_layer()
        self.assertIn(XA + "overlay.metacopy", os.listxattr(self.layers.U("meta.txt")))
        os.unlink(self.layers.L("meta.txt"))
        self.repair_cycle("upperdir/meta.txt", ["metadata-only copy", "missing"])
        self.assertIn(XA + "scratchfs.lost", os.listxattr(self.layers.U("meta.txt")))
        p = fsck(self.layers)
        self.assertEqual(len([l for l in lines(p, "note") if "marked lost" in l]), 1, p.stdout)
        # The mount says so instead of showing zeros.
        m = self.mount(check_lower=False)
        self.assertErrno(errno.EIO, sfs.read_file, m.M("meta.txt"))

    def test_metacopy_data_changed(self):
        self.scratchfs_layer()
        with open(self.layers.L("meta.txt"), "ab") as f:
            f.write(b"edited below")
        self.repair_cycle("upperdir/meta.txt", ["changed"], fixed=False)

    def test_redirect_to_nowhere(self):
        self.scratchfs_layer()
        os.mkdir(self.layers.U("redir"))
        os.setxattr(self.layers.U("redir"), XA + "overlay.redirect", b"/no/such/dir")
        self.repair_cycle("upperdir/redir", ["redirect", "/no/such/dir"], fixed=False)

    def index_entry(self):
        idx = os.path.join(self.layers.work, "index")
        names = os.listdir(idx)
        self.assertEqual(len(names), 1, names)
        return names[0]

    def test_dangling_index_entry(self):
        self.scratchfs_layer()
        name = self.index_entry()
        for n in ("hl", "hl.new"):
            os.unlink(self.layers.U(n))
        os.unlink(self.layers.L("hl2"))
        os.unlink(self.layers.L("hl"))
        self.repair_cycle("workdir/index/" + name, ["no name refers"])
        self.assertEqual(os.listdir(os.path.join(self.layers.work, "index")), [])

    def test_index_count_disagrees(self):
        self.scratchfs_layer()
        name = self.index_entry()
        idx = os.path.join(self.layers.work, "index", name)
        self.assertEqual(os.getxattr(idx, XA + "scratchfs.nlink"), b"1")
        os.setxattr(idx, XA + "scratchfs.nlink", b"3")
        self.repair_cycle("workdir/index/" + name, ["counts 3", "has 1"], fixed=False)
        os.setxattr(idx, XA + "scratchfs.nlink", b"1")
        os.link(self.layers.U("hl"), os.path.join(self.layers.work, "stray-link"))
        self.repair_cycle("workdir/index/" + name, ["link count says 3", "upperdir has 2"],
                          fixed=False)

    def test_ino_collision(self):
        self.scratchfs_layer()
        v = os.getxattr(self.layers.U("meta.txt"), XA + "scratchfs.ino")
        os.setxattr(self.layers.U("data.txt"), XA + "scratchfs.ino", v)
        p = fsck(self.layers, repair=True)
        self.assertEqual(p.returncode, 4, p.stdout)
        hits = [l for l in lines(p, "problem") if "scratchfs.ino" in l]
        self.assertEqual(len(hits), 1, p.stdout)

    # --------------------------------------------------------- in use, crash

    def test_refuses_mounted_layer(self):
        self.scratchfs_layer()
        self.mount()
        for repair in (False, True):
            p = fsck(self.layers, repair=repair)
            self.assertEqual(p.returncode, 8, p.stdout + p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertIn("in use", p.stderr)

    def test_mount_refused_while_checking(self):
        fd = os.open(self.layers.work, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running --fsck holds it
        try:
            p = sfs.run([sfs.binary(), "-f", "-o", sfs.format_options(self.layers.options()),
                         self.layers.mnt], check=False)
        finally:
            os.close(fd)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn("--fsck", p.stderr)
        self.assertFalse(sfs.is_mounted(self.layers.mnt))

    def test_kill9_leftovers(self):
        """What test_crash.py's kill -9 during a copy-up leaves."""
        write_file(self.layers.L("big"), os.urandom(1 << 20) * 64)
        m = self.mount(check_lower=False)
        child = subprocess.Popen([sys.executable, "-c",
                                  "import sys; open(sys.argv[1], 'ab').write(b'+')",
                                  m.M("big")], stderr=subprocess.DEVNULL)
        tmp = os.path.join(self.layers.work, "work")
        seen = sfs.wait_for(lambda: os.listdir(tmp), timeout=20, interval=0.001)
        m.kill9()
        child.kill()
        child.wait()
        sfs.force_umount(self.layers.mnt)
        m.proc = None  # ended here, not by the harness
        self.assertTrue(seen, "the copy-up finished before the kill")
        p = fsck(self.layers)
        self.assertEqual(p.returncode, 4, p.stdout)
        self.assertTrue(lines(p, "problem"))
        self.assertTrue(all("interrupted copy-up" in l for l in lines(p, "problem")), p.stdout)
        self.assertEqual(fsck(self.layers, repair=True).returncode, 1)
        self.assertClean(fsck(self.layers))
        self.assertEqual(os.listdir(tmp), [])
        self.assertFalse(os.path.exists(self.layers.U("big")))


if __name__ == "__main__":
    sfs.main(binary_only=True, subreaper=True)
