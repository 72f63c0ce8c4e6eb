"""Kernel overlayfs compatibility of the local layer's on-disk format:
a local layer written through scratchfs, mounted with `mount -t overlay`,
shows the same tree as scratchfs did (whiteouts, opaque dirs, copied-up
files), and a local layer written through kernel overlayfs, mounted with
scratchfs, shows the same tree as the kernel did."""

import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402


def build_lower(L):
    write_file(L("keep.txt"), b"keep")
    write_file(L("modify.txt"), b"modify me")
    write_file(L("chmod.txt"), b"chmod me")
    write_file(L("delete.txt"), b"delete me")
    write_file(L("rename_src.txt"), b"rename me")
    write_file(L("dir", "a"), b"a")
    write_file(L("dir", "b"), b"b")
    write_file(L("dir", "sub", "c"), b"c")
    write_file(L("recreate", "old1"), b"old1")
    write_file(L("recreate", "old2", "deep"), b"deep")
    write_file(L("deltree", "x", "y"), b"y")
    write_file(L("movedir", "m1"), b"m1")
    write_file(L("movedir", "sub", "m2"), b"m2")
    os.symlink("keep.txt", L("link"))
    os.utime(L("modify.txt"), ns=(10**18, 10**18))
    os.utime(L("chmod.txt"), ns=(10**18, 10**18))


def change_tree(M, rename_dir=False):
    """The same user actions whichever filesystem is mounted at M."""
    write_file(M("new.txt"), b"new")
    os.makedirs(M("newdir", "inner"))
    write_file(M("newdir", "inner", "f"), b"f")
    os.symlink("new.txt", M("newlink"))
    with open(M("modify.txt"), "ab") as f:
        f.write(b" - modified")
    os.chmod(M("chmod.txt"), 0o600)
    os.unlink(M("delete.txt"))
    os.unlink(M("dir", "a"))
    write_file(M("dir", "d"), b"d")
    os.rename(M("rename_src.txt"), M("dir", "renamed.txt"))
    shutil.rmtree(M("recreate"))
    os.makedirs(M("recreate"))
    write_file(M("recreate", "fresh"), b"fresh")
    shutil.rmtree(M("deltree"))
    write_file(M("tmpfile"), b"tmp")
    os.unlink(M("tmpfile"))
    os.mkfifo(M("fifo"))
    if rename_dir:
        # mv falls back to copying on EXDEV (kernel without redirect_dir)
        sfs.run(["mv", M("movedir"), M("movedir2")])
        # a hardlink of a shared file under a new name (metacopy + redirect)
        os.link(M("keep.txt"), M("dir", "keep-link.txt"))


class KernelCompatTest(sfs.TestCase):

    def kernel_mount(self, opts):
        work = os.path.join(self.layers.base, "kwork")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        o = {"lowerdir": ":".join(self.layers.lowers), "upperdir": self.layers.upper,
             "workdir": work}
        o.update(opts)
        sfs.run(["mount", "-t", "overlay", "overlay", "-o", sfs.format_options(o),
                 self.layers.mnt])
        self.addCleanup(sfs.force_umount, self.layers.mnt)

    def kernel_umount(self):
        sfs.run(["umount", self.layers.mnt])

    def compare(self, a, b, na, nb):
        self.assertEqual(a, b, "\n" + sfs.diff_views(a, b, na, nb))

    def scratchfs_to_kernel(self, sfs_opts, kernel_opts, rename_dir):
        build_lower(self.layers.L)
        m = self.mount(**sfs_opts)
        change_tree(m.M, rename_dir=rename_dir)
        want = sfs.tree_view(m.mnt)
        self.assertNotIn("delete.txt", want)
        m.umount()
        self._mounts.remove(m)
        self.kernel_mount(kernel_opts)
        got = sfs.tree_view(self.layers.mnt)
        self.kernel_umount()
        self.compare(want, got, "scratchfs", "kernel")
        # and scratchfs still agrees with itself after the kernel mount
        m = self.mount(**sfs_opts)
        self.compare(want, sfs.tree_view(m.mnt), "scratchfs", "scratchfs-again")

    def test_scratchfs_to_kernel(self):
        self.scratchfs_to_kernel({"metacopy": "off"},
                                 {"metacopy": "off", "redirect_dir": "off", "index": "off"},
                                 rename_dir=False)
        # the formats the kernel reads: 0/0 whiteout, opaque xattr
        self.assertWhiteout(self.layers.U("delete.txt"))
        self.assertEqual(os.getxattr(self.layers.U("recreate"), "trusted.overlay.opaque"), b"y")

    def test_scratchfs_to_kernel_metacopy_redirect(self):
        """Default options (metadata-only copy-up) and a renamed shared
        directory: the kernel needs metacopy=on,redirect_dir=on."""
        self.scratchfs_to_kernel({}, {"metacopy": "on", "redirect_dir": "on", "index": "off"},
                                 rename_dir=True)

    def kernel_to_scratchfs(self, kernel_opts, rename_dir):
        build_lower(self.layers.L)
        before = self.layers.lower_digests()
        self.kernel_mount(kernel_opts)
        change_tree(lambda *p: os.path.join(self.layers.mnt, *p), rename_dir=rename_dir)
        want = sfs.tree_view(self.layers.mnt)
        self.kernel_umount()
        self.assertEqual(self.layers.lower_digests()[0].keys(), before[0].keys())
        # scratchfs gets its own fresh workdir
        self.layers.work = os.path.join(self.layers.base, "work2")
        os.makedirs(self.layers.work)
        m = self.mount()
        self.compare(want, sfs.tree_view(m.mnt), "kernel", "scratchfs")
        # and keeps working on top of it
        write_file(m.M("recreate", "more"), b"more")
        self.assertEqual(sorted(os.listdir(m.M("recreate"))), ["fresh", "more"])

    def test_kernel_to_scratchfs(self):
        self.kernel_to_scratchfs({"metacopy": "off", "redirect_dir": "off", "index": "off"},
                                 rename_dir=True)

    def test_kernel_to_scratchfs_metacopy_redirect(self):
        self.kernel_to_scratchfs({"metacopy": "on", "redirect_dir": "on", "index": "off"},
                                 rename_dir=True)


if __name__ == "__main__":
    if sfs.is_kernel():
        print("this file compares scratchfs with the kernel: SCRATCHFS_BIN=kernel-overlay makes no sense")
        sys.exit(sfs.SKIP)
    if subprocess.run(["grep", "-qw", "overlay", "/proc/filesystems"]).returncode != 0:
        subprocess.run(["modprobe", "overlay"], stderr=subprocess.DEVNULL)
    sfs.main()
