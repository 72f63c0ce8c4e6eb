"""A shared layer on a network filesystem that fails (issue 12, item 2):
sshfs to an sshd of the test's own on loopback (its own config, host key
and client key in a temporary directory), stopped with SIGSTOP and resumed.

  - slow (stopped for less than sshfs's keepalive timeout): a request that
    needs the shared layer waits, then succeeds;
  - stopped: such requests fail with EIO or ENOTCONN within the volume's
    own timeout, while local-only paths keep working; the daemon logs one
    line per episode, not one per request;
  - back: the mount serves the shared layer again without a remount;
  - unmount and SIGTERM work while a request is stuck in the shared layer.
And the shared layer replaced under the same path by a new directory (a
new per-version volume): the mount keeps serving the directory it opened
at mount time; a remount picks up the new one.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

SSHD = "/usr/sbin/sshd"
# sshfs gives up on a stopped server after ServerAliveInterval *
# ServerAliveCountMax seconds; `reconnect` brings it back by itself.
KEEPALIVE = 1
KEEPALIVE_COUNT = 2
GIVE_UP = 10  # seconds a request may take while the volume is stopped
QUIET = 5.5   # seconds of answers that end an episode (health.c), and some


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def descendants(pid):
    """pid and every process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


class SshVolume:
    """export/ served by a private sshd, mounted with sshfs at mnt."""

    def __init__(self, base, mnt):
        self.dir = tempfile.mkdtemp(prefix="ssh-", dir=base)
        self.export = os.path.join(self.dir, "export")
        os.makedirs(self.export)
        self.mnt = mnt
        self.sshd = self.sshfs = None
        self.made_run_dir = False
        self.stopped = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self):
        for key in ("hostkey", "clientkey"):
            sfs.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.path(key)])
        shutil.copy(self.path("clientkey.pub"), self.path("authorized_keys"))
        self.port = free_port()
        with open(self.path("sshd_config"), "w") as f:
            f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\n"
                    "AuthorizedKeysFile %s\nPidFile %s\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    "UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n" % (
                        self.port, self.path("hostkey"), self.path("authorized_keys"),
                        self.path("sshd.pid")))
        # Debian's sshd insists on its privilege separation directory.
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755)
            self.made_run_dir = True
        with open(self.path("sshd.log"), "w") as log:
            self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", self.path("sshd_config")],
                                         stdout=subprocess.DEVNULL, stderr=log)
        sfs.wait_for(lambda: self._port_open(), timeout=10)
        opts = ("IdentityFile=%s,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,"
                "BatchMode=yes,ServerAliveInterval=%d,ServerAliveCountMax=%d,ConnectTimeout=2,"
                "reconnect,allow_other" % (self.path("clientkey"), KEEPALIVE, KEEPALIVE_COUNT))
        with open(self.path("sshfs.log"), "w") as log:
            self.sshfs = subprocess.Popen(
                ["sshfs", "-f", "root@127.0.0.1:" + self.export, self.mnt, "-p",
                 str(self.port), "-o", opts], stdout=subprocess.DEVNULL, stderr=log)
        if not sfs.wait_for(lambda: sfs.is_mounted(self.mnt), timeout=15):
            raise AssertionError("sshfs did not mount:\n%s" % self.log("sshfs.log"))

    def _port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self, name):
        try:
            with open(self.path(name)) as f:
                return f.read()
        except OSError:
            return ""

    def stop_answering(self):
        """Freeze sshd: the listener and every session."""
        self.stopped = descendants(self.sshd.pid)
        for p in self.stopped:
            os.kill(p, signal.SIGSTOP)

    def resume(self):
        for p in self.stopped:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped = []

    def close(self):
        self.resume()
        if self.sshfs is not None:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self.sshfs.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.sshfs.kill()
                self.sshfs.wait()
            self.sshfs = None
        if self.sshd is not None:
            for p in reversed(descendants(self.sshd.pid)):
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            self.sshd.wait()
            self.sshd = None
        if self.made_run_dir:
            try:
                os.rmdir("/run/sshd")
            except OSError:
                pass
            self.made_run_dir = False


CHILD = r"""
import os, sys, time
t = time.monotonic()
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "read":
        with open(path, "rb") as f:
            f.read()
    elif op == "stat":
        os.stat(path)
    elif op == "list":
        os.listdir(path)
    e = 0
except OSError as ex:
    e = ex.errno
print(e, time.monotonic() - t)
"""


def timed(op, path, timeout=GIVE_UP + 20):
    """Run op on path in a child process: (errno, seconds); (None, timeout)
    if it did not finish in time (the child is then left to the kernel
    and killed)."""
    p = subprocess.Popen([sys.executable, "-c", CHILD, op, path], stdout=subprocess.PIPE,
                         text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return None, timeout
    e, secs = out.split()
    return int(e), float(secs)


def shared_layer_lines(m):
    return [line for line in m.output().splitlines() if "shared layer" in line]


class SharedVolumeTest(sfs.TestCase):

    def setUp(self):
        super().setUp()
        if not (shutil.which("sshfs") and os.path.exists(SSHD)):
            self.skipTest("sshfs or openssh-server missing (contrib/install-deps.sh)")
        self.vol = SshVolume(self.layers.base, self.layers.lower)
        E = self.vol.export
        for i in range(20):
            write_file(os.path.join(E, "shared/f%02d" % i), b"shared %d\n" % i)
        write_file(os.path.join(E, "top"), b"top\n")
        self.vol.start()
        os.environ["SFS_IGNORE_ATIME"] = "1"  # the sftp server reads without O_NOATIME
        self.addCleanup(os.environ.pop, "SFS_IGNORE_ATIME", None)
        self.export_digest = sfs.lower_digest(E)
        self.local_fd = None

    def tearDown(self):
        # Unmount scratchfs, then sshfs, then remove the layers.
        self.release_local()
        self.vol.resume()
        cleanup = self.layers.cleanup

        def close_then_cleanup():
            self.vol.close()
            cleanup()
        self.layers.cleanup = close_then_cleanup
        super().tearDown()

    def mount_local(self):
        m = self.mount(check_lower=False)
        os.mkdir(m.M("local"))
        write_file(m.M("local/f"), b"local\n")
        self.assertEqual(read_file(m.M("local/f")), b"local\n")
        # "local" sits in the merged root: were the kernel to forget it
        # (memory pressure), looking it up again would ask the shared
        # layer whether a shared "local" merges with it.  Held open, the
        # kernel keeps it, as it keeps a venv in use.
        self.local_fd = os.open(m.M("local"), os.O_RDONLY | os.O_DIRECTORY)
        return m

    def release_local(self):
        if self.local_fd is not None:
            os.close(self.local_fd)
            self.local_fd = None

    def local_work(self, m, tag):
        """Local-only operations; the slowest one's name and seconds."""
        new, moved = m.M("local/new-%s" % tag), m.M("local/moved-%s" % tag)
        steps = [("create", lambda: write_file(new, b"new\n", mkdirs=False)),
                 ("read", lambda: self.assertEqual(read_file(new), b"new\n")),
                 ("rename", lambda: os.rename(new, moved)),
                 ("list", lambda: self.assertIn(os.path.basename(moved),
                                                os.listdir(m.M("local")))),
                 ("unlink", lambda: os.unlink(moved)),
                 ("read old", lambda: self.assertEqual(read_file(m.M("local/f")), b"local\n"))]
        worst = ("", 0.0)
        for name, fn in steps:
            t = time.monotonic()
            fn()
            worst = max(worst, (name, time.monotonic() - t), key=lambda x: x[1])
        return worst

    def test_slow_volume_waits(self):
        m = self.mount_local()
        self.vol.stop_answering()
        p = subprocess.Popen([sys.executable, "-c", CHILD, "read", m.M("shared/f01")],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # less than sshfs's keepalive timeout
        self.assertLess(self.local_work(m, "slow")[1], 1.0)
        self.vol.resume()
        out, _ = p.communicate(timeout=GIVE_UP)
        self.assertEqual(out.split()[0], "0", "a slow volume failed the request")
        self.assertEqual(read_file(m.M("shared/f01")), b"shared 1\n")
        self.release_local()

    def test_outage_and_recovery(self):
        m = self.mount_local()
        self.assertEqual(read_file(m.M("shared/f00")), b"shared 0\n")
        for episode in (1, 2):
            self.vol.stop_answering()
            # Requests that need the shared layer: an error, in bounded time.
            for i, (op, name) in enumerate([("stat", "shared/new%d" % episode),
                                            ("read", "shared/f%02d" % (2 * episode)),
                                            ("stat", "missing%d" % episode),
                                            ("list", "shared")]):
                e, secs = timed(op, m.M(name))
                self.assertIsNotNone(e, "%s %s hung while the volume was stopped" % (op, name))
                if op != "list":  # a listing may come from the kernel's cache
                    self.assertIn(e, (errno.EIO, errno.ENOTCONN),
                                  "%s %s: %s after %.1f s" % (op, name, e and os.strerror(e),
                                                            secs))
                self.assertLess(secs, GIVE_UP)
            # Local-only paths do not wait for the volume.
            self.assertLess(self.local_work(m, "out%d" % episode)[1], 1.0)
            self.vol.resume()
            # sshfs reconnects by itself; the mount needs nothing.
            ok = sfs.wait_for(lambda: sfs.errno_of(os.stat, self.vol.export) == 0 and
                              sfs.errno_of(os.listdir, self.layers.lower) == 0, timeout=15)
            self.assertTrue(ok, "sshfs did not come back")
            content = sfs.wait_for(lambda: sfs.errno_of(read_file, m.M("shared/f10")) == 0,
                                   timeout=10)
            self.assertTrue(content, "the mount does not serve the volume again")
            self.assertEqual(read_file(m.M("shared/f%02d" % (2 * episode + 1))),
                             b"shared %d\n" % (2 * episode + 1))
            # The episode ends with an answer 5 s after the last failure.
            time.sleep(QUIET)
            self.assertEqual(read_file(m.M("shared/f%02d" % (2 * episode + 10))),
                             b"shared %d\n" % (2 * episode + 10))
            lines = shared_layer_lines(m)
            for what in ("not answering", "answers again"):
                self.assertEqual(len([x for x in lines if what in x]), episode,
                                 "want one line per episode:\n%s" % "\n".join(lines))
        self.release_local()
        m.umount()
        self.assertEqual(sfs.lower_digest(self.vol.export), self.export_digest,
                         "the shared layer was modified")

    def stuck_reader(self, m):
        self.release_local()
        self.vol.stop_answering()
        p = subprocess.Popen([sys.executable, "-c", CHILD, "read", m.M("shared/f05")],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        return p

    def test_sigterm_during_outage(self):
        m = self.mount_local()
        reader = self.stuck_reader(m)
        t = time.monotonic()
        m.proc.send_signal(signal.SIGTERM)
        try:
            rc = m.proc.wait(timeout=GIVE_UP)
        except subprocess.TimeoutExpired:
            self.fail("scratchfs still running %d s after SIGTERM with the volume stopped"
                      % GIVE_UP)
        self.assertEqual(rc, 0, m.output())
        self.assertTrue(sfs.wait_for(lambda: not sfs.is_mounted(m.mnt), timeout=5))
        self.assertLess(time.monotonic() - t, GIVE_UP)
        reader.communicate(timeout=GIVE_UP)
        m.proc = None

    def test_umount_during_outage(self):
        m = self.mount_local()
        reader = self.stuck_reader(m)
        t = time.monotonic()
        # Not busy for the kernel only while no request is in flight:
        # a lazy unmount is what an admin does here.
        p = sfs.run(["umount", "-l", m.mnt], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        try:
            m.proc.wait(timeout=GIVE_UP)
        except subprocess.TimeoutExpired:
            self.fail("scratchfs still running %d s after umount with the volume stopped"
                      % GIVE_UP)
        self.assertLess(time.monotonic() - t, GIVE_UP)
        reader.communicate(timeout=GIVE_UP)
        m.proc = None


class ReplacedVolumeTest(sfs.TestCase):
    """A new per-version volume put at the shared layer's path (the old
    directory renamed away, a new one in its place, or a new filesystem
    mounted over it): the mount goes on serving the directory it opened,
    live; the new one shows after a remount."""

    def setUp(self):
        super().setUp()
        write_file(self.layers.L("v"), b"version 1\n")
        write_file(self.layers.L("pkg/mod.py"), b"one = 1\n")

    def check_replaced(self, replace, restore):
        m = self.mount(check_lower=False)
        self.assertEqual(read_file(m.M("v")), b"version 1\n")
        old = replace()
        # Not the new volume: the one opened at mount time, still live.
        self.assertEqual(read_file(m.M("v")), b"version 1\n")
        self.assertEqual(read_file(m.M("pkg/mod.py")), b"one = 1\n")
        write_file(os.path.join(old, "added"), b"late\n")
        self.assertTrue(sfs.wait_for(lambda: os.path.exists(m.M("added")), timeout=5),
                        "the opened volume is no longer live")
        self.assertFalse(os.path.exists(m.M("new-only")))
        m.remount()
        self.assertEqual(read_file(m.M("v")), b"version 2\n")
        self.assertTrue(os.path.exists(m.M("new-only")))
        self.assertFalse(os.path.exists(m.M("added")))
        m.umount()
        restore()

    def test_directory_renamed_and_replaced(self):
        L = self.layers.lower

        def replace():
            os.rename(L, L + ".old")
            write_file(os.path.join(L, "v"), b"version 2\n")
            write_file(os.path.join(L, "new-only"), b"")
            return L + ".old"
        self.check_replaced(replace, lambda: None)

    def test_filesystem_mounted_over(self):
        L = self.layers.lower
        over = []

        def replace():
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", L], check=True)
            over.append(L)
            write_file(os.path.join(L, "v"), b"version 2\n")
            write_file(os.path.join(L, "new-only"), b"")
            # The old volume is still reachable for the test through the
            # mount's own view of it (an fd opened before).
            return self.old_view
        fd = os.open(L, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, fd)
        self.old_view = "/proc/self/fd/%d" % fd
        self.addCleanup(lambda: over and sfs.force_umount(over[0]))
        self.check_replaced(replace, lambda: sfs.force_umount(L))


if __name__ == "__main__":
    sfs.main()
