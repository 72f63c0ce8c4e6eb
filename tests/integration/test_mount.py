"""scratchfs as the system mounts it: mount(8) and fstab lines, the daemon's
life cycle (umount, SIGTERM, SIGINT, kill -9 and the stale mount it leaves),
refusals (bad options, unsuitable directories, a second mount) that must
leave nothing mounted, and read-only mounts.

The whole file runs in a private mount namespace (unshare(CLONE_NEWNS) at
start, / made rprivate): every mount it makes, including those made by
mount(8) and by daemonized scratchfs processes, is invisible to the rest of
the machine and goes away with the namespace, and /proc/self/mountinfo can
be compared before and after a refused mount.

mount(8) runs its helpers with a sanitized environment (util-linux drops
PATH), so mount.fuse3 finds `scratchfs` only in /bin/sh's default PATH, as
after `make install`.  The tests "install" the binary under test into that
PATH the way make install would, but only inside the namespace:
  - MountCommandTest: a symlink to it in /usr/local/sbin (bind mount of a
    temporary directory), no mount helper: mount(8) runs /sbin/mount.fuse.
  - MountHelperTest: contrib/mount.fuse.scratchfs, with @bindir@ replaced
    as `make install` does, made visible as /sbin/mount.fuse.scratchfs
    (read-only overlay over /usr/sbin), scratchfs itself only in that
    private bindir.

The test process is a child subreaper (PR_SET_CHILD_SUBREAPER), so a
daemonized scratchfs is re-parented to it and its exit status can be read.
"""

import errno
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

SRCDIR = os.environ.get("SCRATCHFS_SRCDIR") or os.path.join(sfs.HERE, "..", "..")
# Generic mount flags scratchfs passes to the kernel (mountinfo names).
FLAGS = ["noexec", "nosuid", "nodev", "noatime", "sync", "dirsync"]


# ------------------------------------------------------------ process setup

def cmd_env():
    """Environment for mount(8) & co: the build's src/ first in PATH (as a
    user would do; mount(8) drops it for its helpers anyway), LANG=C."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sfs.binary()) + ":" + env.get("PATH", "/usr/bin:/bin")
    env["LANG"] = env["LC_ALL"] = "C"
    return env


def run(cmd, timeout=30, **kw):
    """Run cmd (no check); a hang is a failure, not an endless test."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=cmd_env(), timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%r did not finish within %d s (stdout %r, stderr %r)"
                             % (cmd, timeout, e.stdout, e.stderr))
    p.elapsed = time.monotonic() - t0
    return p


def mountpoints():
    """Every mount point in this namespace (a multiset as a sorted list)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            out.append(line.split()[4])
    return sorted(out)


def mount_entry(mnt):
    """(fstype, source, per-mount options, super options) of the mount at mnt."""
    parts = sfs.mountinfo_entry(mnt)
    if parts is None:
        return None
    sep = parts.index("-")
    return parts[sep + 1], parts[sep + 2], parts[5].split(","), parts[sep + 3].split(",")


def count_mounts_at(mnt):
    mnt = os.path.realpath(mnt)
    return sum(1 for mp in mountpoints() if mp == mnt)


def wait_exit(pid, timeout=15):
    """Wait for pid to end; returns its exit status (negative: killed by
    that signal), None if it is not our child (status unknown), or raises
    on timeout."""
    end = time.monotonic() + timeout
    while True:
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            if not os.path.exists("/proc/%d" % pid):
                return None
            wpid = 0
        if wpid == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            raise AssertionError("process %d still running after %d s" % (pid, timeout))
        time.sleep(0.02)


class Base(sfs.TestCase):

    def setUp(self):
        super().setUp()
        L = self.layers.L
        write_file(L("hello.txt"), b"hello from the shared layer\n")
        write_file(L("dir", "inner.txt"), b"inner\n")
        write_file(L("prog"), b"#!/bin/sh\nexit 0\n", mode=0o755)
        self._daemons = []

    def tearDown(self):
        # whatever a test left mounted by a daemonized scratchfs (not one of
        # the sfs.Mount ones, which sfs.TestCase checks): unmount, reap
        own = {m.proc.pid for m in self._mounts if m.proc is not None}
        for mnt in [self.layers.mnt] + getattr(self, "extra_mnts", []):
            pids = [pid for pid in sfs.daemon_pids(mnt) if pid not in own]
            if not pids:
                continue
            sfs.force_umount(mnt)
            for pid in pids:
                try:
                    wait_exit(pid, timeout=5)
                except AssertionError:
                    os.kill(pid, signal.SIGKILL)
                    wait_exit(pid)
        super().tearDown()

    def daemon_of(self, mnt):
        pids = sfs.daemon_pids(mnt)
        self.assertEqual(len(pids), 1, "expected one scratchfs process for %s, found %r"
                         % (mnt, pids))
        return pids[0]

    def assertScratchfsMounted(self, mnt, source=None):
        e = mount_entry(mnt)
        self.assertIsNotNone(e, "%s is not mounted" % mnt)
        fstype, src, mopts, sopts = e
        self.assertEqual(fstype, "fuse.scratchfs")
        if source is not None:
            self.assertEqual(src, source)
        self.assertIn("default_permissions", sopts)
        self.assertIn("allow_other", sopts)
        self.assertEqual(count_mounts_at(mnt), 1, "%s is mounted more than once" % mnt)

    def assertUmountEndsDaemon(self, mnt, cmd=("umount",)):
        pid = self.daemon_of(mnt)
        p = run(list(cmd) + [mnt])
        self.assertEqual(p.returncode, 0, "%r: %s" % (cmd, p.stderr))
        self.assertFalse(sfs.is_mounted(mnt))
        status = wait_exit(pid)
        self.assertEqual(sfs.daemon_pids(mnt), [], "scratchfs still running after %s"
                         % " ".join(cmd))
        self.assertIn(status, (0, None), "daemon exited with %r after %s" % (status, cmd[0]))
        self.assertIsNotNone(status, "daemon %d was not re-parented to the test: exit "
                             "status unknown" % pid)

    def assertWorks(self, mnt):
        """The mount shows the shared layer and writes land in upper."""
        self.assertEqual(read_file(os.path.join(mnt, "hello.txt")),
                         b"hello from the shared layer\n")
        write_file(os.path.join(mnt, "new.txt"), b"written through " + mnt.encode())
        self.assertEqual(read_file(self.layers.U("new.txt")), b"written through " + mnt.encode())

    def assertMountFlags(self, mnt, flags, absent=()):
        """Each flag in /proc/self/mountinfo (per-mount or superblock
        options), none of `absent`."""
        fstype, src, mopts, sopts = mount_entry(mnt)
        for f in flags:
            self.assertIn(f, mopts + sopts, "%s: %s not in %s / %s" % (mnt, f, mopts, sopts))
        for f in absent:
            self.assertNotIn(f, mopts + sopts, "%s: %s in %s / %s" % (mnt, f, mopts, sopts))

    def assertExecRefused(self, mnt, refused=True):
        """execve of an executable in the shared layer, through the mount."""
        prog = os.path.join(mnt, "prog")
        if refused:
            self.assertErrno(errno.EACCES, subprocess.run, [prog])
        else:
            self.assertEqual(subprocess.run([prog]).returncode, 0)

    def write_fstab(self, lines):
        path = os.path.join(self.layers.base, "fstab")
        with open(path, "w") as f:
            f.write("# scratchfs test fstab\n")
            for line in lines:
                f.write(line + "\n")
        return path


# ------------------------------------------------------------ mount(8)

class Installed:
    """Make the binary under test reachable by mount(8) inside the
    namespace; see the module docstring."""

    def __init__(self, helper):
        self.dir = tempfile.mkdtemp(prefix="sfs-install-")
        os.chmod(self.dir, 0o755)
        self.mounts = []
        self.bindir = os.path.join(self.dir, "bin")
        os.mkdir(self.bindir)
        os.symlink(sfs.binary(), os.path.join(self.bindir, "scratchfs"))
        if helper:
            src = os.path.join(SRCDIR, "contrib", "mount.fuse.scratchfs")
            self.helper_src = src
            if not os.path.exists(src):
                return
            sbin = os.path.join(self.dir, "sbin")
            os.mkdir(sbin)
            with open(src) as f:
                text = f.read().replace("@bindir@", self.bindir)
            with open(os.path.join(sbin, "mount.fuse.scratchfs"), "w") as f:
                f.write(text)
            os.chmod(os.path.join(sbin, "mount.fuse.scratchfs"), 0o755)
            self._mount(["mount", "-t", "overlay", "sfs-test-sbin", "-o",
                         "lowerdir=%s:%s" % (sbin, os.path.realpath("/usr/sbin")),
                         os.path.realpath("/usr/sbin")], os.path.realpath("/usr/sbin"))
        else:
            self._mount(["mount", "--bind", self.bindir, "/usr/local/sbin"], "/usr/local/sbin")

    def _mount(self, cmd, where):
        subprocess.run(cmd, check=True)
        self.mounts.append(where)

    def remove(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", m], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class MountCommandTest(Base):
    """mount(8) -> /sbin/mount.fuse (mount.fuse3) -> scratchfs in PATH."""

    HELPER = False

    @classmethod
    def setUpClass(cls):
        cls.installed = Installed(helper=cls.HELPER)

    @classmethod
    def tearDownClass(cls):
        cls.installed.remove()

    def test_mount_t_shared_dir_positional(self):
        lw = self.layers
        p = run(["mount", "-t", "fuse.scratchfs", lw.lower, lw.mnt, "-o",
                 "upperdir=%s,workdir=%s" % (lw.upper, lw.work)])
        self.assertEqual(p.returncode, 0, "mount failed: %s%s" % (p.stdout, p.stderr))
        self.assertScratchfsMounted(lw.mnt, source=lw.lower)
        # mount.fuse3 asks root's mounts for suid,dev, as mount(8) would
        self.assertMountFlags(lw.mnt, [], absent=FLAGS)
        self.assertWorks(lw.mnt)
        self.assertUmountEndsDaemon(lw.mnt)

    def test_mount_t_lowerdir_form(self):
        lw = self.layers
        second = os.path.join(lw.base, "lower-b")
        write_file(os.path.join(second, "hello.txt"), b"hidden by the top layer\n")
        write_file(os.path.join(second, "only-b.txt"), b"b\n")
        p = run(["mount", "-t", "fuse.scratchfs", "scratch", lw.mnt, "-o",
                 "lowerdir=%s:%s,upperdir=%s,workdir=%s" % (lw.lower, second, lw.upper, lw.work)])
        self.assertEqual(p.returncode, 0, "mount failed: %s%s" % (p.stdout, p.stderr))
        self.assertScratchfsMounted(lw.mnt, source="scratch")
        self.assertWorks(lw.mnt)
        self.assertEqual(read_file(lw.M("only-b.txt")), b"b\n")
        self.assertUmountEndsDaemon(lw.mnt)

    def test_mount_ro(self):
        lw = self.layers
        p = run(["mount", "-t", "fuse.scratchfs", "-o",
                 "ro,lowerdir=%s,upperdir=%s,workdir=%s" % (lw.lower, lw.upper, lw.work),
                 "scratch", lw.mnt])
        self.assertEqual(p.returncode, 0, "mount failed: %s%s" % (p.stdout, p.stderr))
        self.assertIn("ro", mount_entry(lw.mnt)[2])
        self.assertEqual(read_file(lw.M("hello.txt")), b"hello from the shared layer\n")
        self.assertErrno(errno.EROFS, write_file, lw.M("new.txt"), b"x", mkdirs=False)
        self.assertUmountEndsDaemon(lw.mnt)

    def test_mount_t_flags_reach_the_kernel(self):
        lw = self.layers
        p = run(["mount", "-t", "fuse.scratchfs", "-o",
                 "noexec,nosuid,nodev,noatime,sync,dirsync,lowerdir=%s,upperdir=%s,workdir=%s"
                 % (lw.lower, lw.upper, lw.work), "scratch", lw.mnt])
        self.assertEqual(p.returncode, 0, "mount failed: %s%s" % (p.stdout, p.stderr))
        self.assertMountFlags(lw.mnt, FLAGS)
        self.assertExecRefused(lw.mnt)
        self.assertUmountEndsDaemon(lw.mnt)

    def test_fstab_flags_reach_the_kernel(self):
        lw = self.layers
        fstab = self.write_fstab([
            "%s %s fuse.scratchfs noexec,nodev,nosuid,noatime,upperdir=%s,workdir=%s 0 0"
            % (lw.lower, lw.mnt, lw.upper, lw.work)])
        p = run(["mount", "-T", fstab, lw.mnt])
        self.assertEqual(p.returncode, 0, "mount -T failed: %s%s" % (p.stdout, p.stderr))
        self.assertMountFlags(lw.mnt, ["noexec", "nodev", "nosuid", "noatime"])
        self.assertExecRefused(lw.mnt)
        self.assertUmountEndsDaemon(lw.mnt)

    def test_fstab_T(self):
        lw = self.layers
        fstab = self.write_fstab([
            "%s %s fuse.scratchfs upperdir=%s,workdir=%s,nofail 0 0"
            % (lw.lower, lw.mnt, lw.upper, lw.work)])
        p = run(["mount", "-T", fstab, lw.mnt])
        self.assertEqual(p.returncode, 0, "mount -T failed: %s%s" % (p.stdout, p.stderr))
        self.assertScratchfsMounted(lw.mnt, source=lw.lower)
        self.assertWorks(lw.mnt)
        self.assertUmountEndsDaemon(lw.mnt)
        # and again by --fstab, naming the source instead of the mount point
        p = run(["mount", "--fstab", fstab, lw.lower])
        self.assertEqual(p.returncode, 0, "mount --fstab failed: %s%s" % (p.stdout, p.stderr))
        self.assertScratchfsMounted(lw.mnt, source=lw.lower)
        self.assertEqual(read_file(lw.M("new.txt")), b"written through " + lw.mnt.encode())
        self.assertUmountEndsDaemon(lw.mnt)

    def test_fstab_mount_a_with_missing_shared_dir_nofail(self):
        lw = self.layers
        mnt2 = os.path.join(lw.base, "mnt2")
        os.mkdir(mnt2)
        self.extra_mnts = [mnt2]
        missing = os.path.join(lw.base, "no-such-shared-dir")
        up2, wk2 = os.path.join(lw.base, "upper2"), os.path.join(lw.base, "work2")
        os.mkdir(up2)
        os.mkdir(wk2)
        fstab = self.write_fstab([
            "scratch %s fuse.scratchfs lowerdir=%s,upperdir=%s,workdir=%s,nofail,_netdev 0 0"
            % (lw.mnt, lw.lower, lw.upper, lw.work),
            "%s %s fuse.scratchfs upperdir=%s,workdir=%s,nofail 0 0" % (missing, mnt2, up2, wk2),
        ])
        p = run(["mount", "-a", "-T", fstab], timeout=60)
        self.assertLess(p.elapsed, 30, "mount -a took %.1f s" % p.elapsed)
        # the good line is mounted, the bad one is not and says why
        self.assertScratchfsMounted(lw.mnt, source="scratch")
        self.assertWorks(lw.mnt)
        self.assertFalse(sfs.is_mounted(mnt2), "the line with a missing shared dir mounted")
        self.assertEqual(sfs.daemon_pids(mnt2), [])
        self.assertIn(missing, p.stderr, "no message names the missing shared dir:\n%s%s"
                      % (p.stdout, p.stderr))
        self.assertRegex(p.stderr, r"(?m)^scratchfs: .*%s.*(does not exist|No such file)"
                         % re.escape(missing))
        self.assertEqual(os.listdir(up2), [])
        self.assertUmountEndsDaemon(lw.mnt)

    def test_fstab_example_from_contrib(self):
        example = os.path.join(SRCDIR, "contrib", "fstab.example")
        if not os.path.exists(example):
            self.skipTest("no contrib/fstab.example")
        lw = self.layers
        lines = []
        with open(example) as f:
            for line in f:
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                fields = line.split()
                self.assertGreaterEqual(len(fields), 4, "bad fstab line: %r" % line)
                self.assertEqual(fields[2], "fuse.scratchfs", line)
                if fields[0].startswith("/"):
                    fields[0] = lw.lower
                fields[1] = lw.mnt
                opts = []
                for o in fields[3].split(","):
                    k = o.split("=", 1)[0]
                    opts.append({"lowerdir": "lowerdir=" + lw.lower,
                                 "upperdir": "upperdir=" + lw.upper,
                                 "workdir": "workdir=" + lw.work}.get(k, o))
                fields[3] = ",".join(opts)
                lines.append(" ".join(fields))
        self.assertEqual(len(lines), 1, "contrib/fstab.example: expected one line, got %r"
                         % lines)
        fstab = self.write_fstab(lines)
        p = run(["mount", "-T", fstab, lw.mnt])
        self.assertEqual(p.returncode, 0, "mount -T (from fstab.example %r) failed: %s%s"
                         % (lines[0], p.stdout, p.stderr))
        self.assertScratchfsMounted(lw.mnt)
        self.assertWorks(lw.mnt)
        self.assertUmountEndsDaemon(lw.mnt)

    def test_mount_t_twice_then_kill9_then_umount(self):
        lw = self.layers
        args = ["mount", "-t", "fuse.scratchfs", "scratch", lw.mnt, "-o",
                "lowerdir=%s,upperdir=%s,workdir=%s" % (lw.lower, lw.upper, lw.work)]
        p = run(args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertWorks(lw.mnt)
        pid = self.daemon_of(lw.mnt)
        # a second mount(8) on top is refused by scratchfs
        p = run(args)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?m)^scratchfs: .*%s.*already" % re.escape(lw.mnt))
        self.assertEqual(count_mounts_at(lw.mnt), 1)
        # kill -9: stale; mount(8) says how to clear it; umount clears it
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(wait_exit(pid), -signal.SIGKILL)
        self.assertTrue(sfs.is_mounted(lw.mnt))
        p = run(args)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?m)^scratchfs: .*%s.*fusermount3 -u" % re.escape(lw.mnt))
        self.assertEqual(count_mounts_at(lw.mnt), 1)
        p = run(["umount", lw.mnt])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(sfs.is_mounted(lw.mnt))
        p = run(args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(read_file(lw.M("new.txt")), b"written through " + lw.mnt.encode())
        self.assertUmountEndsDaemon(lw.mnt)

    def test_mount_t_bad_input_leaves_nothing_mounted(self):
        lw = self.layers
        before = mountpoints()
        missing = os.path.join(lw.base, "no-such-shared-dir")
        p = run(["mount", "-t", "fuse.scratchfs", missing, lw.mnt, "-o",
                 "upperdir=%s,workdir=%s" % (lw.upper, lw.work)])
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?m)^scratchfs: .*%s" % re.escape(missing))
        p = run(["mount", "-t", "fuse.scratchfs", lw.lower, lw.mnt, "-o",
                 "upperdir=%s,workdir=%s,bogus_option=1" % (lw.upper, lw.work)])
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?m)^scratchfs: .*bogus_option")
        self.assertEqual(mountpoints(), before)
        self.assertEqual(sfs.daemon_pids(lw.mnt), [])


class MountHelperTest(MountCommandTest):
    """The same through contrib/mount.fuse.scratchfs installed as
    /sbin/mount.fuse.scratchfs, scratchfs only in the helper's bindir."""

    HELPER = True

    def setUp(self):
        super().setUp()
        if not os.path.exists(self.installed.helper_src):
            self.fail("contrib/mount.fuse.scratchfs is missing")

    def test_helper_is_used(self):
        self.assertTrue(os.path.exists("/sbin/mount.fuse.scratchfs"))
        self.assertFalse(shutil.which("scratchfs", path="/usr/local/sbin:/usr/local/bin:"
                                      "/usr/sbin:/usr/bin:/sbin:/bin"),
                         "scratchfs is in the default PATH: this class would not test the helper")

    def test_fake_mount_mounts_nothing(self):
        lw = self.layers
        before = mountpoints()
        p = run(["mount", "-f", "-t", "fuse.scratchfs", lw.lower, lw.mnt, "-o",
                 "upperdir=%s,workdir=%s" % (lw.upper, lw.work)])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(mountpoints(), before)
        self.assertEqual(sfs.daemon_pids(lw.mnt), [])


# ------------------------------------------------------------ the daemon

class DaemonTest(Base):

    def scratchfs(self, *args, foreground=False, timeout=20):
        argv = [sfs.binary()] + (["-f"] if foreground else []) + list(args)
        return run(argv, timeout=timeout)

    def layer_opts(self, **kw):
        return sfs.format_options(self.layers.options(**kw))

    def assertOneLine(self, p, code, *words):
        """Refused: exit status code, exactly one line on stderr, naming
        each of words, nothing on stdout."""
        lines = p.stderr.splitlines()
        self.assertEqual(p.returncode, code, "exit status %d, expected %d; stderr:\n%s"
                         % (p.returncode, code, p.stderr))
        self.assertEqual(len(lines), 1, "expected one line on stderr, got:\n%s" % p.stderr)
        self.assertTrue(p.stderr.endswith("\n"))
        self.assertTrue(lines[0].startswith("scratchfs: "), lines[0])
        for w in words:
            self.assertIn(w, lines[0])
        self.assertEqual(p.stdout, "")
        return lines[0]

    def forget(self, m):
        """The test ended this Mount's daemon itself."""
        m.proc = None
        if m.log:
            m.log.close()
            m.log = None

    def test_mount_flags_reach_the_kernel(self):
        """noexec, nosuid, nodev, noatime, sync, dirsync given with -o: in
        /proc/self/mountinfo and in what the kernel allows; exec, suid, dev
        given instead allow it again."""
        lw = self.layers
        os.mknod(lw.L("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        shutil.copy2("/usr/bin/id", lw.L("id"))
        os.chmod(lw.L("id"), 0o4755)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        m = self.mount(**{f: True for f in FLAGS})
        self.assertMountFlags(lw.mnt, FLAGS)
        self.assertExecRefused(lw.mnt)
        self.assertErrno(errno.EACCES, os.open, m.M("null"), os.O_RDONLY)
        self.assertEqual(sfs.run(nobody + ["/bin/cat", m.M("hello.txt")]).returncode, 0)
        m.umount()
        m = self.mount(exec=True, suid=True, dev=True)
        self.assertMountFlags(lw.mnt, [], absent=FLAGS)
        self.assertExecRefused(lw.mnt, refused=False)
        os.close(os.open(m.M("null"), os.O_RDONLY))
        self.assertEqual(sfs.run(nobody + [m.M("id"), "-u"]).stdout.strip(), "0")
        m.umount()
        m = self.mount(nosuid=True)
        self.assertEqual(sfs.run(nobody + [m.M("id"), "-u"]).stdout.strip(), "65534")

    def test_help_passes_mount_flags(self):
        out = self.scratchfs("--help").stdout
        ignored = out[out.index("Accepted and ignored"):].split("\n\n")[0]
        for f in FLAGS + ["ro"]:
            self.assertIn(f, out)
            self.assertNotIn(f, ignored.replace(",", " ").split())

    def builtin_state_dir(self):
        """Where the built-in local layers of root live (from --help), on a
        tmpfs of this test's own (in the test's mount namespace)."""
        out = self.scratchfs("--help").stdout
        state = re.search(r"STATE is (\S+) as root", out).group(1)
        if not os.path.isdir(state):
            os.makedirs(state)
            self.addCleanup(os.rmdir, state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "sfs-test-state", state],
                       check=True)
        self.layers.fs_mounts.append(state)
        return state

    def test_builtin_local_layer_root_shows_shared_root(self):
        """Only lowerdir in the config file: the local layer scratchfs
        creates gets the top shared layer root's owner, group and mode, so
        every user reaches the mount as they reach the shared root."""
        lw = self.layers
        self.builtin_state_dir()
        os.chown(lw.lower, 1000, 1001)
        os.chmod(lw.lower, 0o775)
        conf = os.path.join(lw.base, "scratchfs.conf")
        write_file(conf, "[%s]\nlowerdir = %s\n" % (lw.mnt, lw.lower))
        for _ in range(2):  # created, then found again
            p = self.scratchfs("-c", conf, lw.mnt)
            self.assertEqual(p.returncode, 0, p.stderr)
            st = os.stat(lw.mnt)
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (1000, 1001, 0o775))
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            self.assertEqual(sfs.run(nobody + ["/bin/cat", lw.M("hello.txt")]).returncode, 0)
            self.assertUmountEndsDaemon(lw.mnt)
        # an upperdir the administrator made keeps its own
        os.chmod(lw.upper, 0o700)
        write_file(conf, "[%s]\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
                   % (lw.mnt, lw.lower, lw.upper, lw.work))
        p = self.scratchfs("-c", conf, lw.mnt)
        self.assertEqual(p.returncode, 0, p.stderr)
        st = os.stat(lw.mnt)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 0, 0o700))
        self.assertUmountEndsDaemon(lw.mnt)

    def test_second_mount_refused(self):
        lw = self.layers
        m = self.mount()
        write_file(m.M("mine.txt"), b"first mount\n")
        for fg in (False, True):
            p = self.scratchfs("-o", self.layer_opts(), lw.mnt, foreground=fg)
            line = self.assertOneLine(p, 4, lw.mnt)
            self.assertIn("already", line)
            self.assertEqual(count_mounts_at(lw.mnt), 1)
        # the first mount is untouched
        self.assertEqual(read_file(m.M("mine.txt")), b"first mount\n")
        self.assertTrue(m.alive())

    def test_bad_input(self):
        lw = self.layers
        other = os.path.join(lw.base, "otherfs")
        os.mkdir(other)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "sfs-test-otherfs", other],
                       check=True)
        lw.fs_mounts.append(other)
        os.mkdir(os.path.join(other, "work"))
        before = mountpoints()
        missing = os.path.join(lw.base, "no-such-dir")
        a_file = os.path.join(lw.base, "a-file")
        write_file(a_file, b"")
        inner_upper = lw.L("inner-upper")
        os.mkdir(inner_upper)
        cases = [
            ("unknown option", ["-o", self.layer_opts() + ",frobnicate=1", lw.mnt],
             1, ["frobnicate"]),
            ("unknown flag", ["--frobnicate", "-o", self.layer_opts(), lw.mnt], 1,
             ["frobnicate"]),
            ("nodefault_permissions", ["-o", self.layer_opts() + ",nodefault_permissions",
                                       lw.mnt], 1, ["default_permissions"]),
            ("missing shared dir", ["-o", self.layer_opts(lowerdir=missing), lw.mnt], 3,
             [missing]),
            ("missing positional shared dir",
             ["-o", "upperdir=%s,workdir=%s" % (lw.upper, lw.work), missing, lw.mnt], 3,
             [missing]),
            ("missing upperdir", ["-o", self.layer_opts(upperdir=missing), lw.mnt], 3,
             [missing]),
            ("upperdir inside lowerdir", ["-o", self.layer_opts(upperdir=inner_upper), lw.mnt],
             3, [inner_upper]),
            ("workdir on another filesystem",
             ["-o", self.layer_opts(workdir=os.path.join(other, "work")), lw.mnt], 3,
             [os.path.join(other, "work")]),
            ("missing mount point", ["-o", self.layer_opts(), missing], 4, [missing]),
            ("mount point is a file", ["-o", self.layer_opts(), a_file], 4, [a_file]),
        ]
        for what, args, code, words in cases:
            for fg in (False, True):
                with self.subTest(case=what, foreground=fg):
                    p = self.scratchfs(*args, foreground=fg)
                    self.assertOneLine(p, code, *words)
                    self.assertEqual(mountpoints(), before, "a mount was left behind")
                    self.assertEqual(sfs.daemon_pids(lw.mnt), [])
        self.assertEqual(os.listdir(lw.upper), [])
        self.assertEqual(os.listdir(lw.mnt), [])

    def _signal_foreground(self, sig):
        m = self.mount()
        write_file(m.M("x.txt"), b"x")
        m.proc.send_signal(sig)
        try:
            rc = m.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("daemon did not exit within 15 s of %s" % sig.name)
        out = m.output()
        self.forget(m)
        self.assertFalse(sfs.is_mounted(self.layers.mnt), "still mounted after %s" % sig.name)
        self.assertEqual(rc, 0, "exit status %d after %s\n%s" % (rc, sig.name, out))
        self.assertEqual(read_file(self.layers.U("x.txt")), b"x")

    def test_sigterm_foreground(self):
        self._signal_foreground(signal.SIGTERM)

    def test_sigint_foreground(self):
        self._signal_foreground(signal.SIGINT)

    def _signal_daemon(self, sig):
        lw = self.layers
        p = self.scratchfs("-o", self.layer_opts(), lw.mnt)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        # the command returned: the mount is already up
        self.assertScratchfsMounted(lw.mnt)
        self.assertWorks(lw.mnt)
        pid = self.daemon_of(lw.mnt)
        os.kill(pid, sig)
        status = wait_exit(pid)
        self.assertFalse(sfs.is_mounted(lw.mnt), "still mounted after %s" % sig.name)
        self.assertIsNotNone(status, "daemon not re-parented to the test")
        self.assertEqual(status, 0, "daemon exit status %d after %s" % (status, sig.name))

    def test_sigterm_daemon(self):
        self._signal_daemon(signal.SIGTERM)

    def test_sigint_daemon(self):
        self._signal_daemon(signal.SIGINT)

    def _kill9_stale(self, clear_cmd):
        lw = self.layers
        m = self.mount()
        write_file(m.M("kept.txt"), b"written before the crash\n")
        os.mkdir(m.M("newdir"))
        os.unlink(m.M("dir", "inner.txt"))
        view = sfs.tree_view(m.mnt)
        # close and sync so the data is in the local layer for sure
        os.sync()
        m.kill9()
        self.forget(m)
        self.assertTrue(sfs.is_mounted(lw.mnt), "kill -9 left no stale mount")
        self.assertErrno(errno.ENOTCONN, os.stat, lw.mnt)
        for fg in (False, True):
            p = self.scratchfs("-o", self.layer_opts(), lw.mnt, foreground=fg)
            line = self.assertOneLine(p, 4, lw.mnt, "fusermount3 -u")
            self.assertIn("fusermount3 -u %s" % lw.mnt, line)
        p = run(clear_cmd + [lw.mnt])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(sfs.is_mounted(lw.mnt))
        m2 = self.mount()
        self.assertEqual(sfs.tree_view(m2.mnt), view,
                         sfs.diff_views(view, sfs.tree_view(m2.mnt), "before", "after"))
        self.assertEqual(read_file(m2.M("kept.txt")), b"written before the crash\n")

    def test_kill9_stale_fusermount(self):
        self._kill9_stale(["fusermount3", "-u"])

    def test_kill9_stale_umount_lazy(self):
        self._kill9_stale(["umount", "-l"])

    def test_ro_mount(self):
        lw = self.layers
        write_file(lw.L("rw.txt"), b"data\n", mode=0o666)
        m = self.mount(ro=True)
        self.assertIn("ro", mount_entry(lw.mnt)[2])
        M = m.M
        self.assertEqual(read_file(M("hello.txt")), b"hello from the shared layer\n")
        self.assertEqual(sorted(os.listdir(M("dir"))), ["inner.txt"])
        checks = [
            ("create", lambda: os.open(M("new"), os.O_WRONLY | os.O_CREAT, 0o644)),
            ("open for write", lambda: os.open(M("rw.txt"), os.O_WRONLY)),
            ("open O_TRUNC", lambda: os.open(M("rw.txt"), os.O_RDONLY | os.O_TRUNC)),
            ("mkdir", lambda: os.mkdir(M("newdir"))),
            ("unlink", lambda: os.unlink(M("hello.txt"))),
            ("rmdir", lambda: os.rmdir(M("dir"))),
            ("rename", lambda: os.rename(M("hello.txt"), M("moved"))),
            ("symlink", lambda: os.symlink("x", M("sl"))),
            ("link", lambda: os.link(M("hello.txt"), M("hl"))),
            ("chmod", lambda: os.chmod(M("hello.txt"), 0o600)),
            ("chown", lambda: os.chown(M("hello.txt"), 1, 1)),
            ("truncate", lambda: os.truncate(M("rw.txt"), 0)),
            ("utime", lambda: os.utime(M("hello.txt"), (1, 1))),
            ("setxattr", lambda: os.setxattr(M("hello.txt"), "user.x", b"1")),
            ("mknod", lambda: os.mkfifo(M("fifo"))),
        ]
        for what, fn in checks:
            with self.subTest(op=what):
                self.assertErrno(errno.EROFS, fn)
        self.assertEqual(os.listdir(lw.upper), [])
        self.assertEqual(read_file(M("rw.txt")), b"data\n")


def main():
    sfs.main(binary_only=True, subreaper=True)


if __name__ == "__main__":
    main()
