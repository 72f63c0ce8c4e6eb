"""The status channel: counters read while mounted through the root's
user.scratchfs.status xattr, `scratchfs --status` in its three formats,
who may read and who may change, the totals line at unmount, and
-o loglevel=."""

import errno
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402

STATUS = "user.scratchfs.status"
LOGLEVEL = "user.scratchfs.loglevel"


def status(mnt, fmt="json", check=True):
    p = sfs.run([sfs.binary(), "--status", "--format=" + fmt, mnt], check=check)
    if fmt == "json" and p.returncode == 0:
        return json.loads(p.stdout)
    return p


# One sample of the exposition format: name{labels} value.
PROM_SAMPLE = re.compile(r'^scratchfs_[a-z_]+\{mountpoint="[^"]*"(,[a-z]+="[^"]*")*\} \d+$')


class StatusTest(sfs.TestCase):

    def test_counts_what_happened(self):
        L = self.layers.L
        write_file(L("shared.txt"), b"shared\n")
        write_file(L("big.bin"), os.urandom(100000))
        m = self.mount()
        M = m.M
        before = status(m.mnt)
        write_file(M("local.txt"), b"x")
        for i in range(5):
            os.link(M("local.txt"), M("l%d" % i))
        os.link(M("shared.txt"), M("shared.link"))     # metadata-only copy-up
        with open(M("big.bin"), "ab") as f:             # data copy-up
            f.write(b"+")
        os.unlink(M("shared.txt"))                      # whiteout
        self.assertErrno(errno.ENOENT, os.stat, M("missing"))
        write_file(M("d/x"), b"")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, M("d"))
        s = status(m.mnt)
        self.assertEqual(s["mountpoint"], m.mnt)
        self.assertEqual(s["upperdir"], self.layers.upper)
        self.assertEqual(s["requests"]["link"] - before["requests"]["link"], 6)
        self.assertEqual(s["links"] - before["links"], 6)
        self.assertEqual(s["exdev"], 0)
        self.assertEqual(s["copyups_metadata"], 1)
        self.assertEqual(s["copyups_data"], 1)
        self.assertEqual(s["copyup_bytes"], 100000)
        self.assertEqual(s["whiteouts"], 1)
        self.assertEqual(s["errors"].get("ENOTEMPTY"), 1)
        self.assertEqual(s["errors_total"], sum(s["errors"].values()))
        self.assertEqual(s["requests_total"], sum(s["requests"].values()))
        # What the local layer holds, as du counts it (the roots aside).
        used = sfs.du(self.layers.upper, self.layers.work)
        self.assertEqual((s["upper_bytes"], s["upper_inodes"]), used)

    def test_human_and_prometheus(self):
        m = self.mount()
        write_file(m.M("a"), b"a")
        os.link(m.M("a"), m.M("b"))
        p = status(m.mnt, "human")
        self.assertEqual(p.stderr, "")
        self.assertIn("scratchfs on %s" % m.mnt, p.stdout)
        self.assertRegex(p.stdout, r"\n  links made +1\n")
        self.assertRegex(p.stdout, r"\n  EXDEV returned +0\n")
        self.assertRegex(p.stdout, r"local layer size +[0-9.]+ (B|KiB|MiB) \(no limit\)")
        p = status(m.mnt, "prometheus")
        helps = set()
        for line in p.stdout.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                helps.add(line.split()[2])
                continue
            self.assertRegex(line, PROM_SAMPLE)
            self.assertIn(line.split("{")[0], helps, "sample before its HELP/TYPE")
        self.assertIn('scratchfs_links_total{mountpoint="%s"} 1' % m.mnt, p.stdout)
        self.assertIn('scratchfs_requests_total{mountpoint="%s",op="link"} 1' % m.mnt,
                      p.stdout)

    def test_adds_no_name(self):
        write_file(self.layers.L("f"), b"")
        m = self.mount()
        self.assertEqual(sorted(os.listdir(m.mnt)), ["f"])
        self.assertNotIn(STATUS, os.listxattr(m.mnt))
        self.assertNotIn(LOGLEVEL, os.listxattr(m.mnt))
        # Only the root has it.
        os.mkdir(m.M("d"))
        self.assertErrno(errno.ENODATA, os.getxattr, m.M("d"), STATUS)
        self.assertTrue(os.getxattr(m.mnt, STATUS).startswith(b"version 1\n"))

    def test_not_a_mount(self):
        for path in (self.layers.mnt, self.layers.upper):
            p = status(path, "human", check=False)
            self.assertEqual(p.returncode, 4, p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertIn(path, p.stderr)
            self.assertEqual(p.stdout, "")
        m = self.mount()
        os.mkdir(m.M("sub"))
        p = status(m.M("sub"), "human", check=False)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("not the root", p.stderr)

    def test_bad_format(self):
        p = sfs.run([sfs.binary(), "--status", "--format=xml", self.layers.mnt], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertIn("--format=xml", p.stderr)

    def test_who_may_read_and_change(self):
        import sfs_users
        sfs_users.ensure_users()
        bob = sfs_users.User(sfs_users.BOB)
        m = self.mount()
        os.chmod(m.mnt, 0o755)
        out = bob.sh("%s --status --format=json %s" % (sfs.binary(), m.mnt))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["mountpoint"], m.mnt)
        # Nobody changes the counters; only root (the mounting user) the
        # level.  A root everyone may write lets bob's calls get past the
        # kernel's own check to scratchfs's.
        os.chmod(m.mnt, 0o777)
        self.assertEqual(bob.err("os.setxattr(%r, %r, b'debug')" % (m.mnt, LOGLEVEL)),
                         errno.EPERM)
        self.assertEqual(bob.err("os.setxattr(%r, %r, b'x')" % (m.mnt, STATUS)),
                         errno.EPERM)
        self.assertErrno(errno.EPERM, os.setxattr, m.mnt, STATUS, b"x")
        self.assertErrno(errno.EPERM, os.removexattr, m.mnt, STATUS)
        self.assertErrno(errno.EINVAL, os.setxattr, m.mnt, LOGLEVEL, b"loud")
        self.assertEqual(os.getxattr(m.mnt, LOGLEVEL), b"warn")
        os.setxattr(m.mnt, LOGLEVEL, b"info")
        self.assertEqual(os.getxattr(m.mnt, LOGLEVEL), b"info")

    def test_totals_at_unmount(self):
        m = self.mount()
        write_file(m.M("a"), b"a")
        os.link(m.M("a"), m.M("b"))
        log = []
        orig = m.describe
        m.describe = lambda: log.append(orig()) or log[-1]
        m.umount()
        totals = [l for l in log[-1].splitlines() if "totals:" in l]
        self.assertEqual(len(totals), 1, log[-1])
        self.assertIn(m.mnt, totals[0])
        self.assertIn(" 1 links,", totals[0])
        self.assertIn(" 0 EXDEV,", totals[0])

    def test_loglevel_info_copyups(self):
        L = self.layers.L
        write_file(L("a.txt"), b"aaa")
        write_file(L("b.txt"), b"bbbbb")
        write_file(L("c.txt"), b"c")
        m = self.mount(loglevel="info")
        for i in range(20):
            os.stat(m.M("a.txt"))                      # nothing per request
        os.chmod(m.M("a.txt"), 0o600)
        os.link(m.M("c.txt"), m.M("c2"))
        with open(m.M("b.txt"), "ab") as f:
            f.write(b"+")
        out = m.output()
        lines = [l for l in out.splitlines() if "copy-up" in l]
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[0], r"copy-up \(chmod\): /a.txt, metadata only")
        self.assertRegex(lines[1], r"copy-up \(link\): /c.txt, metadata only")
        self.assertRegex(lines[2], r"copy-up \(open for write\): /b.txt, 5 bytes")
        self.assertEqual(len(out.splitlines()), 3, out)

    def test_loglevel_warn_is_quiet(self):
        write_file(self.layers.L("a.txt"), b"aaa")
        m = self.mount()
        os.chmod(m.M("a.txt"), 0o600)
        self.assertEqual(m.output(), "")

    def test_bad_options(self):
        for opt, word in (("loglevel=loud", "loglevel"), ("upper_limit=12X", "upper_limit"),
                          ("upper_limit=", "upper_limit"), ("upper_inodes=1k", "upper_inodes")):
            with self.subTest(opt=opt):
                p = sfs.run([sfs.binary(), "-f", "-o", format(self.layers.options()) + "," + opt,
                             self.layers.mnt], check=False)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertIn(word, p.stderr)
                self.assertFalse(sfs.is_mounted(self.layers.mnt))


def format(opts):
    return sfs.format_options(opts)


if __name__ == "__main__":
    sfs.enter_private_namespace()
    sfs.main()
