"""scratchfs run by an unprivileged user (sfs-dave) over layers that user
owns, mounted through fusermount3 (setuid root), without allow_other, and
unmounted by that user with `fusermount3 -u`.

Whiteouts and opaque directories (design.md section 4): an unprivileged
daemon cannot set trusted.* xattrs, so opaque directories carry
user.overlay.opaque=y; whiteouts are character devices 0/0 where the
kernel lets the user create them (Linux >= 5.8 allows an unprivileged
mknod of 0/0) and `.wh.NAME` files where it does not.  Both situations are
tested: as the kernel allows, and with mknod/mknodat and
renameat2(RENAME_WHITEOUT) refused with EPERM by a seccomp filter installed
(as root, before dropping to the user) on the daemon - what a kernel or a
container without whiteout-device support does.

The file runs in a private mount namespace.  libfuse opens /dev/fuse itself
before calling fusermount3, so the user needs read-write access to it: if
/dev/fuse is not 0666 here, a 0666 node of the same device is bind-mounted
over /dev/fuse inside the namespace only (the real node is not touched).
"""

import atexit
import ctypes
import errno
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
import sfs_users  # noqa: E402
from sfs import write_file  # noqa: E402
from sfs_users import User  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)


# ------------------------------------------------------------ environment

def open_dev_fuse_for_users(tmpbase):
    """Give users rw access to /dev/fuse inside this namespace only."""
    st = os.stat("/dev/fuse")
    if stat.S_IMODE(st.st_mode) & 0o006 == 0o006:
        return
    d = tempfile.mkdtemp(prefix="sfs-devfuse-", dir=tmpbase)
    node = os.path.join(d, "fuse")
    os.mknod(node, stat.S_IFCHR | 0o666, st.st_rdev)
    os.chmod(node, 0o666)
    subprocess.run(["mount", "--bind", node, "/dev/fuse"], check=True)

    def remove():
        subprocess.run(["umount", "/dev/fuse"], check=False)
        shutil.rmtree(d, ignore_errors=True)
    atexit.register(remove)


# ------------------------------------------------------------ seccomp

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
RENAME_WHITEOUT = 4
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
# arch -> (AUDIT_ARCH, syscall numbers of mknod, mknodat, renameat2)
ARCHES = {
    "x86_64": (0xC000003E, (133, 259), 316),
    "aarch64": (0xC00000B7, (33,), 276),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def no_whiteout_devices_filter():
    """BPF program: mknod/mknodat, and renameat2 with RENAME_WHITEOUT in its
    flags, fail with EPERM; everything else is allowed."""
    audit_arch, mknods, renameat2 = ARCHES[platform.machine()]
    flags_low = 16 + 4 * 8 + (0 if sys.byteorder == "little" else 4)  # args[4]
    n = 2 + 1 + len(mknods) + 1 + 1 + 1 + 2
    allow_at, deny_at = n - 2, n - 1
    prog = [(BPF_LD_W_ABS, 0, 0, 4)]                                 # A = arch
    prog.append((BPF_JEQ_K, 0, allow_at - 2, audit_arch))           # other arch
    prog.append((BPF_LD_W_ABS, 0, 0, 0))                             # A = nr
    for nr in mknods:
        pc = len(prog)
        prog.append((BPF_JEQ_K, deny_at - pc - 1, 0, nr))
    pc = len(prog)
    prog.append((BPF_JEQ_K, 0, allow_at - pc - 1, renameat2))
    prog.append((BPF_LD_W_ABS, 0, 0, flags_low))                     # A = flags
    pc = len(prog)
    prog.append((BPF_JSET_K, deny_at - pc - 1, 0, RENAME_WHITEOUT))
    prog.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    prog.append((BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM))
    assert len(prog) == n
    return (_SockFilter * n)(*[_SockFilter(*i) for i in prog])


def install_filter(arr):
    prog = _SockFprog(len(arr), ctypes.cast(arr, ctypes.POINTER(_SockFilter)))
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        e = ctypes.get_errno()
        os.write(2, b"seccomp filter: %s\n" % os.strerror(e).encode())
        os._exit(126)


# ------------------------------------------------------------ the mount

_user_bin = {}


def user_binary(user):
    """The binary under test as a path USER can execute: a build directory
    below /root is not, then a copy in a world-readable temporary directory
    is used."""
    if user.name in _user_bin:
        return _user_bin[user.name]
    b = sfs.binary()
    if user.sh("test -x %s" % b).returncode != 0:
        d = tempfile.mkdtemp(prefix="sfs-rootless-bin-")
        os.chmod(d, 0o755)
        atexit.register(shutil.rmtree, d, True)
        shutil.copy2(b, os.path.join(d, "scratchfs"))
        os.chmod(os.path.join(d, "scratchfs"), 0o755)
        b = os.path.join(d, "scratchfs")
    _user_bin[user.name] = b
    return b

class UserMount:
    """scratchfs -f run as USER (through setpriv) over LAYERS."""

    def __init__(self, user, layers, no_whiteout_devices=False, opts=None):
        self.user = user
        self.layers = layers
        self.no_wh = no_whiteout_devices
        self.opts = opts or {}
        self.proc = None
        self.log = None

    def start(self, timeout=15):
        opts = self.layers.options(**self.opts)
        self.args = [user_binary(self.user), "-f"]
        if os.environ.get("SFS_DEBUG"):
            self.args.append("-d")
        self.args += ["-o", sfs.format_options(opts), self.layers.mnt]
        self.log = tempfile.TemporaryFile()
        preexec = None
        if self.no_wh:
            arr = no_whiteout_devices_filter()
            preexec = lambda: install_filter(arr)  # noqa: E731
        self.proc = self.user.popen(self.args, stdin=subprocess.DEVNULL, stdout=self.log,
                                    stderr=subprocess.STDOUT, preexec_fn=preexec)
        end = time.monotonic() + timeout
        while not sfs.is_mounted(self.layers.mnt):
            if self.proc.poll() is not None:
                raise AssertionError("scratchfs as %s exited with %d before mounting\n%s"
                                     % (self.user.name, self.proc.returncode, self.describe()))
            if time.monotonic() > end:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mount did not appear\n%s" % self.describe())
            time.sleep(0.01)
        return self

    def output(self):
        if not self.log:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-20000:]

    def describe(self):
        return "command: %s (as %s%s)\noutput:\n%s" % (
            " ".join(self.args), self.user.name,
            ", no whiteout devices" if self.no_wh else "", self.output())

    def umount(self):
        """fusermount3 -u as the user; the daemon must exit 0."""
        p = self.user.sh("fusermount3 -u %s" % self.layers.mnt)
        problems = []
        if p.returncode != 0:
            problems.append("fusermount3 -u as %s failed (%d): %s"
                            % (self.user.name, p.returncode, p.stderr.strip()))
            sfs.force_umount(self.layers.mnt)
        try:
            rc = self.proc.wait(timeout=15)
            if rc != 0:
                problems.append("daemon exited with %d after fusermount3 -u" % rc)
        except subprocess.TimeoutExpired:
            problems.append("daemon still running 15 s after fusermount3 -u")
            self.proc.kill()
            self.proc.wait()
        if sfs.is_mounted(self.layers.mnt):
            problems.append("still mounted after fusermount3 -u")
        desc = self.describe()
        self.proc = None
        self.log.close()
        self.log = None
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + desc)

    def abort(self):
        if self.proc is not None:
            sys.stderr.write("\n[sfs] daemon output:\n%s\n" % self.output())
            sfs.force_umount(self.layers.mnt)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


# ------------------------------------------------------------ tests

LOWER = {
    "f1": b"f1\n", "f2": b"f2\n", "g": b"g\n", "h": b"h\n", "f3": b"f3\n",
    ".hidden": b"dotfile\n",
    "tree/a": b"a\n", "tree/sub/x": b"x\n",
    "keep/k1": b"k1\n", "keep/k2": b"k2\n",
    "deep/d1/d2/file": b"deep\n",
}
EMPTY_DIRS = ["empty"]

# what the user does; the names it removes from the merged view
OPS = r"""
import shutil
m = sys.argv[2]
os.unlink(m + '/f1')
os.rmdir(m + '/empty')
shutil.rmtree(m + '/tree')
os.mkdir(m + '/tree')
write(m + '/tree/new', b'new\n', 0o644)
os.rename(m + '/g', m + '/g2')
os.rename(m + '/f2', m + '/h')
os.unlink(m + '/keep/k1')
os.unlink(m + '/deep/d1/d2/file')
write(m + '/fresh', b'fresh\n', 0o644)
os.unlink(m + '/fresh')
"""

# parent dir -> names that must be whiteouts in the local layer
WHITEOUTS = {"": ["f1", "f2", "g", "empty"], "keep": ["k1"], "deep/d1/d2": ["file"]}

VIEW_AFTER = {
    "": [".hidden", "deep", "f3", "g2", "h", "keep", "tree"],
    "tree": ["new"], "keep": ["k2"], "deep": ["d1"], "deep/d1": ["d2"], "deep/d1/d2": [],
}

VIEW_CODE = r"""
m = sys.argv[2]
OUT['list'] = {}
for dp, dns, fns in os.walk(m):
    rel = os.path.relpath(dp, m)
    OUT['list']['' if rel == '.' else rel] = sorted(dns + fns)
OUT['gone'] = {n: E(os.lstat, m + '/' + n) for n in
               ['f1', 'f2', 'g', 'empty', 'tree/a', 'tree/sub', 'keep/k1', 'deep/d1/d2/file',
                'fresh']}
OUT['h'] = open(m + '/h').read()
OUT['g2'] = open(m + '/g2').read()
OUT['f3'] = open(m + '/f3').read()
OUT['tree_new'] = open(m + '/tree/new').read()
"""


class RootlessTest(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        sfs_users.ensure_users()
        cls.dave = User(sfs_users.DAVE)

    def setUp(self):
        self.layers = sfs.Layers(prefix="sfs-rootless-")
        for rel, data in LOWER.items():
            write_file(self.layers.L(rel), data)
        for d in EMPTY_DIRS:
            os.mkdir(self.layers.L(d))
        d = self.dave
        for root, dns, fns in os.walk(self.layers.base):
            for n in [root] + [os.path.join(root, x) for x in dns + fns]:
                os.lchown(n, d.uid, d.gid)
        self.mounts = []
        sfs.age_atimes(self.layers.lower)
        self.lower_before = sfs.lower_digest(self.layers.lower)

    def tearDown(self):
        for m in self.mounts:
            m.abort()
        self.layers.cleanup()

    def mount(self, no_whiteout_devices=False, **opts):
        m = UserMount(self.dave, self.layers, no_whiteout_devices, opts)
        self.mounts.append(m)
        return m.start()

    def user_can_mknod_whiteout(self):
        """Can sfs-dave create a 0/0 character device on the upper's
        filesystem (Linux >= 5.8)?"""
        probe = os.path.join(self.layers.work, "probe-wh")
        e = self.dave.err("os.mknod(%r, stat.S_IFCHR, 0)" % probe)
        if e == 0:
            os.unlink(probe)
        return e == 0

    def check_view(self):
        out = self.dave.py(VIEW_CODE, args=[self.layers.mnt])
        self.assertEqual(out["list"], VIEW_AFTER)
        self.assertEqual(out["gone"], {n: errno.ENOENT for n in out["gone"]})
        self.assertEqual(out["h"], "f2\n")
        self.assertEqual(out["g2"], "g\n")
        self.assertEqual(out["f3"], "f3\n")
        self.assertEqual(out["tree_new"], "new\n")

    def check_upper(self, expect_char_whiteouts):
        U = self.layers.U
        problems = []
        for parent, names in WHITEOUTS.items():
            for n in names:
                p = U(parent, n)
                wh = U(parent, ".wh." + n)
                try:
                    st = os.lstat(p)
                    is_chr = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
                except FileNotFoundError:
                    st, is_chr = None, False
                if expect_char_whiteouts:
                    if not is_chr:
                        problems.append("%s: no 0/0 character device whiteout (%s)"
                                        % (p, "missing" if st is None else oct(st.st_mode)))
                else:
                    if not os.path.isfile(wh):
                        problems.append("%s: no .wh. whiteout file" % wh)
                    if st is not None:
                        problems.append("%s: exists next to its .wh. marker (mode %o)"
                                        % (p, st.st_mode))
        # the recreated directory is opaque, with the user.* xattr
        try:
            self.assertEqual(os.getxattr(U("tree"), "user.overlay.opaque"), b"y")
        except OSError as e:
            problems.append("%s: user.overlay.opaque: %s" % (U("tree"), e))
        self.assertTrue(os.path.isdir(U("tree")))
        real = [n for n in os.listdir(U("tree")) if not n.startswith(".wh.") and
                not sfs.is_whiteout(U("tree", n))]
        self.assertEqual(real, ["new"])
        # nothing else: no trusted.* xattrs, no device nodes in fallback mode,
        # everything the user's
        for rel in sfs.walk(self.layers.upper):
            p = U(rel)
            for name in sfs.xattrs_of(p):
                if name.startswith("trusted."):
                    problems.append("%s: trusted xattr %s in a rootless local layer"
                                    % (rel, name))
            st = os.lstat(p)
            if not expect_char_whiteouts and (stat.S_ISCHR(st.st_mode) or
                                              stat.S_ISBLK(st.st_mode)):
                problems.append("%s: device node although the daemon could not create any"
                                % rel)
            if st.st_uid != self.dave.uid:
                problems.append("%s: owned by %d, not by %s" % (rel, st.st_uid, self.dave))
        self.assertFalse(os.path.isfile(U("fresh")), "fresh left behind")
        self.assertEqual(problems, [], "local layer:\n  " + "\n  ".join(problems) +
                         "\nupper: %r" % sfs.walk(self.layers.upper))

    def check_lower_unchanged(self):
        after = sfs.lower_digest(self.layers.lower)
        self.assertEqual(self.lower_before, after,
                         sfs.describe_digest_diff(self.lower_before, after))

    def roundtrip(self, no_wh):
        m = self.mount(no_whiteout_devices=no_wh)
        # no allow_other: the mount is the user's alone, root included
        e = sfs.mountinfo_entry(self.layers.mnt)
        sep = e.index("-")
        fstype, sopts = e[sep + 1], e[sep + 3].split(",")
        self.assertEqual(fstype, "fuse.scratchfs")
        self.assertNotIn("allow_other", sopts)
        self.assertIn("user_id=%d" % self.dave.uid, sopts)
        self.assertErrno(errno.EACCES, os.listdir, self.layers.mnt)
        self.assertEqual(self.dave.py(OPS, args=[self.layers.mnt]), {})
        self.check_view()
        # .wh. names are never shown
        p = self.dave.sh("find %s -name '.wh.*'" % self.layers.mnt)
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        m.umount()
        self.check_upper(expect_char_whiteouts=not no_wh and self.user_can_mknod_whiteout())
        self.check_lower_unchanged()
        # both kinds of marker are read back, whichever kind the daemon writes
        for other in (no_wh, not no_wh):
            m = self.mount(no_whiteout_devices=other)
            self.check_view()
            m.umount()
        # recreate a whited-out name: shown, and no stale marker left
        m = self.mount(no_whiteout_devices=no_wh)
        self.assertEqual(self.dave.create(self.layers.M("f1"), b"f1 again\n"), 0)
        self.assertEqual(self.dave.create(self.layers.M("keep", "k1"), b"k1 again\n"), 0)
        self.assertEqual(self.dave.read(self.layers.M("f1")), (0, b"f1 again\n"))
        m.umount()
        self.assertFalse(os.path.lexists(self.layers.U(".wh.f1")), "stale .wh.f1")
        self.assertFalse(os.path.lexists(self.layers.U("keep", ".wh.k1")), "stale keep/.wh.k1")
        m = self.mount(no_whiteout_devices=no_wh)
        self.assertEqual(self.dave.read(self.layers.M("f1")), (0, b"f1 again\n"))
        self.assertEqual(self.dave.read(self.layers.M("keep", "k1")), (0, b"k1 again\n"))
        m.umount()
        self.check_lower_unchanged()

    def assertErrno(self, expected, fn, *args):
        try:
            fn(*args)
        except OSError as e:
            self.assertEqual(e.errno, expected, "%s%r: %s" % (fn.__name__, args, e))
            return
        self.fail("%s%r succeeded, expected %s" % (fn.__name__, args,
                                                  errno.errorcode[expected]))

    def test_user_xattrs_on_upper_filesystem(self):
        """Precondition of the rootless format: user.* xattrs work where
        the local layer is."""
        e = self.dave.err("os.setxattr(%r, 'user.sfs-probe', b'y')" % self.layers.upper)
        self.assertEqual(e, 0, "user xattrs unsupported on %s: %s"
                         % (self.layers.upper, errno.errorcode.get(e, e)))

    def test_whiteouts_as_the_kernel_allows(self):
        self.roundtrip(no_wh=False)

    def test_whiteouts_without_whiteout_devices(self):
        # the filter really refuses what it should
        probe = os.path.join(self.layers.work, "probe")
        p = self.dave.popen(USER_PY_MKNOD + [probe], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda a=no_whiteout_devices_filter(): install_filter(a))
        out, err = p.communicate(timeout=30)
        self.assertEqual(out.strip(), "1", "mknod 0/0 under the filter: %r %r" % (out, err))
        self.roundtrip(no_wh=True)

    def _wh_name(self, no_wh):
        """A user file that happens to be called .wh.NAME must not hide
        NAME of the shared layer (refusing to create it is fine too)."""
        m = self.mount(no_whiteout_devices=no_wh)
        e = self.dave.create(self.layers.M(".wh.f3"), b"")
        self.assertIn(e, (0, errno.EPERM, errno.EINVAL, errno.EACCES))
        self.assertEqual(self.dave.read(self.layers.M("f3")), (0, b"f3\n"),
                         "creating .wh.f3 (%s) hid f3" % (errno.errorcode.get(e, "success")))
        m.umount()
        m = self.mount(no_whiteout_devices=no_wh)
        self.assertEqual(self.dave.read(self.layers.M("f3")), (0, b"f3\n"),
                         "after a remount, .wh.f3 hides f3")
        m.umount()

    def test_wh_named_file_as_the_kernel_allows(self):
        self._wh_name(False)

    def test_wh_named_file_without_whiteout_devices(self):
        self._wh_name(True)

    def test_allow_other_refused_for_users(self):
        """Without user_allow_other in /etc/fuse.conf, an unprivileged
        -o allow_other cannot work: refused, one line, nothing mounted."""
        with open("/etc/fuse.conf") as f:
            if any(line.strip() == "user_allow_other" for line in f):
                self.skipTest("user_allow_other is set in /etc/fuse.conf")
        before = mountinfo_lines()
        argv = [user_binary(self.dave), "-o",
                sfs.format_options(self.layers.options(allow_other=True)),
                self.layers.mnt]
        p = self.dave.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
        out, err = p.communicate(timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(sfs.is_mounted(self.layers.mnt))
        self.assertEqual(mountinfo_lines(), before)
        self.assertIn("user_allow_other", err)
        self.assertEqual(len(err.splitlines()), 1, "expected one line on stderr:\n%s" % err)


def mountinfo_lines():
    with open("/proc/self/mountinfo") as f:
        return sorted(f.read().splitlines())


USER_PY_MKNOD = sfs_users.USER_PYTHON + [
    "-c", "import os, stat, sys\n"
    "try:\n    os.mknod(sys.argv[1], stat.S_IFCHR, 0); print(0)\n"
    "except OSError as e:\n    print(e.errno)\n"]


def main():
    sfs.require_environment()
    sfs.require_binary()
    sfs.enter_private_namespace()
    open_dev_fuse_for_users(os.environ.get("SCRATCHFS_TMPDIR", "/var/tmp"))
    sfs.main()


if __name__ == "__main__":
    main()
