"""Crash safety of copy-up: kill -9 the daemon while it copies up a 200 MB
shared-layer file, detach the dead mount, remount the same layers: the file
is entirely the old version or entirely the new one, never partial, and
workdir/work holds no leftovers."""

import errno
import hashlib
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402

SIZE = 200 << 20
CHUNK = 4 << 20
APPEND = b"NEW-DATA-APPENDED"

CHILD = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, sys.argv[2].encode())
os.close(fd)
"""


def make_big(path, seed):
    """200 MB of real (non-sparse, non-repeating per chunk) data; returns
    (sha256 of it, sha256 of it + APPEND)."""
    block = os.urandom(CHUNK)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(SIZE // CHUNK):
            data = (b"%s-%08d" % (seed.encode(), i)).ljust(32, b"-") + block[32:]
            f.write(data)
            h.update(data)
    old = h.hexdigest()
    h.update(APPEND)
    return old, h.hexdigest()


def files_under(root):
    out = []
    for dp, dns, fns in os.walk(root):
        for n in fns + [d for d in dns if os.path.islink(os.path.join(dp, d))]:
            p = os.path.join(dp, n)
            try:
                out.append((os.path.relpath(p, root), os.lstat(p).st_size))
            except FileNotFoundError:
                pass
    return out


def has_metacopy(p):
    try:
        os.getxattr(p, "trusted.overlay.metacopy")
        return True
    except OSError as e:
        if e.errno == errno.ENODATA:
            return False
        raise


class CrashTest(sfs.TestCase):

    def round(self, name, trigger):
        U = self.layers.U
        old, new = self.shas[name]
        m = self.mount(check_lower=False)
        child = subprocess.Popen([sys.executable, "-c", CHILD, m.M(name), APPEND.decode()],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        seen = None
        kind, arg = trigger
        while time.monotonic() - t0 < 30:
            if kind == "delay" and time.monotonic() - t0 >= arg:
                break
            if kind == "workdir":
                big = [f for f in files_under(self.layers.work) if f[1] >= arg]
                if big:
                    seen = big
                    break
            if child.poll() is not None:
                break
            time.sleep(0.001)
        m.kill9()
        killed_at = time.monotonic() - t0
        sfs.force_umount(m.mnt)
        m.proc = None
        self._mounts.remove(m)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        print("  %s: killed after %.3f s (child rc %s), in workdir: %s" % (
            name, killed_at, child.returncode, seen))
        # the local layer on its own: nothing half-copied under the name
        u = U(name)
        if os.path.lexists(u):
            if not has_metacopy(u):
                got = sfs.sha_file(u)
                self.assertIn(got, (old, new), "%s: partial file in the local layer (size %d)"
                              % (name, os.stat(u).st_size))
        # remount: the cleanup at mount leaves workdir/work empty, and the
        # file reads as the old or the new version
        m = self.mount(check_lower=False)
        got = sfs.sha_file(m.M(name))
        size = os.stat(m.M(name)).st_size
        self.assertIn(got, (old, new), "%s after crash and remount: size %d, neither old nor new"
                      % (name, size))
        self.assertIn(size, (SIZE, SIZE + len(APPEND)))
        workdir_work = os.path.join(self.layers.work, "work")
        if os.path.isdir(workdir_work):
            self.assertEqual(os.listdir(workdir_work), [], "leftovers in workdir/work")
        leftovers = [f for f in files_under(self.layers.work) if f[1] >= CHUNK]
        self.assertEqual(leftovers, [], "big leftovers in workdir")
        # and it still works: the copy-up completes now
        with open(m.M(name), "ab") as f:
            f.write(b"!")
        self.assertEqual(os.stat(m.M(name)).st_size, size + 1)
        m.umount()
        self._mounts.remove(m)

    def test_kill9_during_copy_up(self):
        self.shas = {}
        triggers = [("big0", ("workdir", 8 << 20)),
                    ("big1", ("workdir", 120 << 20)),
                    ("big2", ("delay", 0.05))]
        for name, _ in triggers:
            self.shas[name] = make_big(self.layers.L(name), name)
        for d in self.layers.lowers:
            sfs.age_atimes(d)
        before = self.layers.lower_digests()
        for name, trig in triggers:
            self.round(name, trig)
        after = self.layers.lower_digests()
        self.assertEqual(before, after, "shared layer modified:\n" +
                         sfs.describe_digest_diff(before[0], after[0]))


if __name__ == "__main__":
    sfs.main()
