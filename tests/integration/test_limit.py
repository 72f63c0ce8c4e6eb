"""-o upper_limit= and -o upper_inodes=: what the local layer may hold.
A write, a copy-up, a link and a mkdir at the edge of the limit fail with
ENOSPC and leave nothing behind; df shows the limit; the count survives a
remount and agrees with du; a real pip install (and cp -al, uv's system
calls) fails cleanly when out of space and works again after rm."""

import base64
import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import unittest
import zipfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
import uv_env  # noqa: E402
from sfs import write_file  # noqa: E402

K = 1024
M = K * K
SYSTEM_PYTHON = "/usr/bin/python3"


def status(mnt):
    p = sfs.run([sfs.binary(), "--status", "--format=json", mnt])
    return json.loads(p.stdout)


def make_wheel(path, name, payload):
    """A minimal pure-python wheel holding `payload` bytes of random data."""
    files = {"%s/__init__.py" % name: b"VALUE = 42\n",
             "%s/data.bin" % name: os.urandom(payload)}
    dist = "%s-1.0.dist-info" % name
    files[dist + "/METADATA"] = ("Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % name).encode()
    files[dist + "/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: scratchfs-test\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = io.StringIO()
    for n, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.write("%s,sha256=%s,%d\n" % (n, digest, len(data)))
    record.write("%s/RECORD,,\n" % dist)
    files[dist + "/RECORD"] = record.getvalue().encode()
    whl = os.path.join(path, "%s-1.0-py3-none-any.whl" % name)
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_STORED) as z:
        for n, data in files.items():
            z.writestr(n, data)
    return whl


class LimitTest(sfs.TestCase):

    def left(self, m):
        s = status(m.mnt)
        return s["upper_bytes_limit"] - s["upper_bytes"], s

    def assertNothingLeft(self, m, name):
        self.assertFalse(os.path.lexists(self.layers.U(name)), name)
        self.assertEqual(os.listdir(os.path.join(self.layers.work, "work")), [])

    def test_write_at_the_edge(self):
        m = self.mount(upper_limit="1M")
        left, s = self.left(m)
        sv = os.statvfs(m.mnt)
        self.assertEqual(sv.f_blocks * sv.f_frsize, 1 * M)
        self.assertEqual((sv.f_blocks - sv.f_bfree) * sv.f_frsize, s["upper_bytes"])
        write_file(m.M("fill"), b"x" * (left - 8 * K))
        with open(m.M("more"), "wb") as f:
            f.write(b"y" * (4 * K))                       # fits
            f.flush()
            with self.assertRaises(OSError) as cm:
                f.write(b"y" * (8 * K))
                f.flush()
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.assertEqual(os.path.getsize(m.M("more")), 4 * K)
        self.assertEqual(os.statvfs(m.mnt).f_bavail, 1)   # one 4K block left
        os.unlink(m.M("fill"))
        with open(m.M("more"), "ab") as f:
            f.write(b"y" * (64 * K))
        self.assertEqual(os.path.getsize(m.M("more")), 68 * K)
        self.assertEqual(status(m.mnt)["errors"].get("ENOSPC"), 1)

    def test_copyup_at_the_edge(self):
        write_file(self.layers.L("shared.bin"), os.urandom(200 * K))
        m = self.mount(upper_limit="1M")
        left, _ = self.left(m)
        write_file(m.M("fill"), b"x" * (left - 100 * K))
        # The data does not fit: the open for writing fails, nothing is left.
        self.assertErrno(errno.ENOSPC, open, m.M("shared.bin"), "ab")
        self.assertNothingLeft(m, "shared.bin")
        # A metadata-only copy needs no data: chmod and link still work.
        os.chmod(m.M("shared.bin"), 0o600)
        os.link(m.M("shared.bin"), m.M("shared.link"))
        self.assertErrno(errno.ENOSPC, open, m.M("shared.link"), "ab")
        os.unlink(m.M("fill"))
        with open(m.M("shared.link"), "ab") as f:
            f.write(b"+")
        self.assertEqual(os.path.getsize(m.M("shared.bin")), 200 * K + 1)
        s = status(m.mnt)
        self.assertEqual(s["copyups_data"], 1)
        self.assertEqual(s["copyup_bytes"], 200 * K)

    def test_link_and_mkdir_at_the_inode_edge(self):
        write_file(self.layers.L("shared.txt"), b"s")
        m = self.mount()
        write_file(m.M("local.txt"), b"l")
        used = status(m.mnt)["upper_inodes"]
        m.umount()
        m = self.mount(upper_inodes=str(used))
        self.assertEqual(os.statvfs(m.mnt).f_ffree, 0)
        self.assertEqual(os.statvfs(m.mnt).f_files, used)
        os.link(m.M("local.txt"), m.M("local.link"))      # no new inode
        self.assertErrno(errno.ENOSPC, os.link, m.M("shared.txt"), m.M("shared.link"))
        self.assertErrno(errno.ENOSPC, os.mkdir, m.M("dir"))
        self.assertErrno(errno.ENOSPC, os.symlink, "x", m.M("sl"))
        self.assertErrno(errno.ENOSPC, open, m.M("new"), "wb")
        self.assertErrno(errno.ENOSPC, os.unlink, m.M("shared.txt"))  # a whiteout
        for n in ("shared.txt", "shared.link", "dir", "sl", "new"):
            self.assertNothingLeft(m, n)
        os.unlink(m.M("local.link"))
        os.unlink(m.M("local.txt"))
        os.mkdir(m.M("dir"))
        self.assertErrno(errno.ENOSPC, os.mkdir, m.M("dir2"))

    def test_mkdir_at_the_byte_edge(self):
        m = self.mount(upper_limit="512K")
        left, _ = self.left(m)
        write_file(m.M("fill"), b"x" * (left - 2 * K))
        self.assertErrno(errno.ENOSPC, os.mkdir, m.M("dir"))
        self.assertNothingLeft(m, "dir")
        write_file(m.M("empty"), b"")                     # an inode, no block
        os.truncate(m.M("fill"), 0)
        os.mkdir(m.M("dir"))

    def test_remount_keeps_the_count(self):
        L = self.layers.L
        for i in range(20):
            write_file(L("pkg/f%d" % i), os.urandom(i * 1000))
        for n in ("olddir/a", "olddir/b", "x", "ren_src"):
            write_file(L(n), b"shared")
        os.mkdir(L("ed"))
        m = self.mount(upper_limit="100M")
        for i in range(20):
            p = m.M("pkg/f%d" % i)
            if i % 4 == 0:
                os.chmod(p, 0o600)
            elif i % 4 == 1:
                with open(p, "ab") as f:
                    f.write(b"+")
            elif i % 4 == 2:
                os.link(p, m.M("pkg/l%d" % i))
            else:
                os.unlink(p)
        # Whiteouts that come and go: a directory emptied of shared names
        # and removed, renames that leave one or land on one.
        for n in ("a", "b"):
            os.unlink(m.M("olddir", n))
        os.rmdir(m.M("olddir"))
        os.unlink(m.M("x"))
        write_file(m.M("y"), b"y")
        os.rename(m.M("y"), m.M("x"))
        os.rename(m.M("ren_src"), m.M("ren_dst"))
        os.rmdir(m.M("ed"))
        os.mkdir(m.M("ld"))
        os.rename(m.M("ld"), m.M("ed"))
        write_file(m.M("new/big"), os.urandom(300 * K))
        os.truncate(m.M("new/big"), 100 * K)
        os.mkdir(m.M("new/d"))
        os.rename(m.M("new/big"), m.M("new/d/big"))
        before = status(m.mnt)
        m.umount()
        du = sfs.du(self.layers.upper, self.layers.work)
        self.assertEqual((before["upper_bytes"], before["upper_inodes"]), du)
        m = self.mount(upper_limit="100M")
        after = status(m.mnt)
        self.assertEqual((after["upper_bytes"], after["upper_inodes"]), du)

    def fill_to(self, m, free):
        left, _ = self.left(m)
        write_file(m.M("ballast"), b"b" * (left - free))

    def test_pip_install_out_of_space(self):
        wheels = os.path.join(self.layers.base, "wheels")
        os.makedirs(wheels)
        make_wheel(wheels, "bigpkg", 3 * M)
        m = self.mount(upper_limit="64M")
        venv = m.M("venv")
        sfs.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", venv])
        self.fill_to(m, 1 * M)
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
                   PIP_NO_CACHE_DIR="1", TMPDIR=m.M("tmp"))
        os.mkdir(m.M("tmp"))
        pip = [SYSTEM_PYTHON, "-m", "pip", "--python", os.path.join(venv, "bin", "python"),
               "install", "--no-index", "--find-links", wheels, "bigpkg"]
        p = sfs.run(pip, check=False, env=env)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("No space left on device", p.stdout + p.stderr)
        self.assertTrue(m.alive())
        os.unlink(m.M("ballast"))
        sfs.run(pip, env=env)
        out = sfs.run([os.path.join(venv, "bin", "python"), "-c",
                       "import bigpkg; print(bigpkg.VALUE)"]).stdout
        self.assertEqual(out.strip(), "42")

    def test_cp_al_out_of_inodes(self):
        """uv's hardlink mode makes these calls: mkdir per directory, link
        per file; each link of a shared file costs a metadata-only copy."""
        for i in range(300):
            write_file(self.layers.L("cache/pkg%d/f%d.py" % (i % 10, i)), b"x" * 100)
        m = self.mount()
        for i in range(200):
            write_file(m.M("ballast/b%d" % i), b"")
        used = status(m.mnt)["upper_inodes"]
        m.umount()
        m = self.mount(upper_inodes=str(used + 150))
        p = sfs.run(["cp", "-al", m.M("cache"), m.M("venv")], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("No space left on device", p.stderr)
        shutil.rmtree(m.M("venv"))
        shutil.rmtree(m.M("ballast"))
        sfs.run(["cp", "-al", m.M("cache"), m.M("venv")])
        self.assertEqual(len(sfs.walk(m.M("venv"))), 310)
        self.assertEqual(os.stat(m.M("venv/pkg0/f0.py")).st_nlink, 2)

    def test_uv_install_out_of_space(self):
        wheels = os.path.join(self.layers.base, "wheels")
        os.makedirs(wheels)
        make_wheel(wheels, "bigpkg", 3 * M)
        m = self.mount(upper_limit="64M")
        uv_bin = uv_env.uv_binary()
        env = uv_env.run_env(m.M("cache/uv"), self.layers.base, UV_LINK_MODE="hardlink",
                             UV_NO_PROGRESS="1", UV_PYTHON=SYSTEM_PYTHON)
        sfs.run([uv_bin, "venv", m.M("venv")], env=env)
        env["VIRTUAL_ENV"] = m.M("venv")
        self.fill_to(m, 1 * M)
        uv = [uv_bin, "pip", "install", "--python", m.M("venv"), "--offline", "--no-index",
              "--find-links", wheels, "bigpkg"]
        p = sfs.run(uv, check=False, env=env)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("No space left on device", p.stderr)
        os.unlink(m.M("ballast"))
        sfs.run(uv, env=env)
        self.assertEqual(status(m.mnt)["exdev"], 0)

    def test_entrypoint_sets_the_limit(self):
        src = os.environ.get("SCRATCHFS_SRCDIR", os.path.join(sfs.HERE, "..", ".."))
        entry = os.path.join(src, "contrib", "entrypoint.sh")
        env = dict(os.environ, SCRATCH_SHARED=self.layers.lower,
                   SCRATCH_LOCAL=os.path.join(self.layers.base, "local"),
                   SCRATCH_MOUNT=self.layers.mnt, SCRATCH_LOCAL_SIZE="1Gi",
                   PATH=os.path.dirname(sfs.binary()) + ":" + os.environ["PATH"])
        p = sfs.run(["sh", entry, sfs.binary(), "--status", "--format=json",
                     self.layers.mnt], env=env, check=False)
        sfs.force_umount(self.layers.mnt)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["upper_bytes_limit"], round(0.95 * (1 << 30)))
        env["SCRATCH_LOCAL_SIZE"] = "lots"
        p = sfs.run(["sh", entry, "true"], env=env, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("SCRATCH_LOCAL_SIZE", p.stderr)
        self.assertFalse(sfs.is_mounted(self.layers.mnt))


if __name__ == "__main__":
    sfs.main(binary_only=True, subreaper=True)
