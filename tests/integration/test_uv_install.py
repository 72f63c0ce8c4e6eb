"""uv-style install: `cp -al cache venv` (mkdir per directory, link per
file, as uv's hardlink mode) of a ~3000-file cache, first created through
the mount, then living only in the shared layer.  Every venv file must be
a hardlink of its cache twin: nlink 2, same st_ino, one st_dev."""

import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402

NFILES = 3000


def generate_cache(root, n=NFILES, seed=1):
    """A wheel-cache-like tree: packages, nested modules, a few sizes."""
    rnd = random.Random(seed)
    sizes = [0, 100, 1500, 4096, 20000, 70000]
    blob = os.urandom(70000)
    made = 0
    pkg = 0
    while made < n:
        base = os.path.join(root, "archive-v0", "pkg%03d" % pkg, "site-packages", "mod%03d" % pkg)
        for sub in ("", "core", "core/impl", "tests", "data/x"):
            d = os.path.join(base, sub) if sub else base
            os.makedirs(d, exist_ok=True)
            for i in range(rnd.randint(5, 25)):
                if made >= n:
                    break
                size = rnd.choice(sizes)
                off = rnd.randint(0, 70000 - size)
                with open(os.path.join(d, "f%03d.py" % i), "wb") as f:
                    f.write(blob[off:off + size])
                made += 1
        pkg += 1
    return made


def files_of(root):
    out = []
    for dp, dns, fns in os.walk(root):
        for n in fns:
            out.append(os.path.relpath(os.path.join(dp, n), root))
    return sorted(out)


class UvInstallTest(sfs.TestCase):

    def check_venv(self, m, cache, venv, check_content=True):
        cfiles, vfiles = files_of(cache), files_of(venv)
        self.assertEqual(len(cfiles), NFILES)
        self.assertEqual(vfiles, cfiles)
        dev = os.stat(m.mnt).st_dev
        bad = []
        for rel in vfiles:
            c = os.lstat(os.path.join(cache, rel))
            v = os.lstat(os.path.join(venv, rel))
            if not (v.st_nlink == 2 and c.st_nlink == 2 and v.st_ino == c.st_ino
                    and v.st_dev == c.st_dev == dev):
                bad.append("%s: nlink %d/%d ino %d/%d dev %d/%d" % (
                    rel, c.st_nlink, v.st_nlink, c.st_ino, v.st_ino, c.st_dev, v.st_dev))
        self.assertEqual(bad[:10], [], "%d of %d venv files are not hardlinks of the cache"
                         % (len(bad), len(vfiles)))
        if check_content:
            for rel in vfiles:
                self.assertEqual(sfs.sha_file(os.path.join(venv, rel)),
                                 sfs.sha_file(os.path.join(cache, rel)), rel)

    def cp_al(self, m, src, dst):
        t0 = time.monotonic()
        p = sfs.run(["cp", "-al", src, dst], check=False)
        dt = time.monotonic() - t0
        self.assertEqual((p.returncode, p.stderr), (0, ""), "cp -al failed")
        print("  cp -al of %d files: %.2f s" % (NFILES, dt))

    def test_cache_created_through_mount(self):
        m = self.mount()
        generate_cache(m.M("cache"))
        self.cp_al(m, m.M("cache"), m.M("venv"))
        self.check_venv(m, m.M("cache"), m.M("venv"))
        # both names live in the local layer as one inode
        some = [f for f in files_of(self.layers.U("venv"))
                if not os.path.basename(f).startswith(".wh.")][::97]
        for rel in some:
            self.assertEqual(os.stat(self.layers.U("venv", rel)).st_ino,
                             os.stat(self.layers.U("cache", rel)).st_ino, rel)

    def test_cache_in_shared_layer(self):
        generate_cache(self.layers.L("cache"))
        m = self.mount()
        self.cp_al(m, m.M("cache"), m.M("venv"))
        self.check_venv(m, m.M("cache"), m.M("venv"))
        # a write through the venv name is seen through the cache name
        rel = files_of(m.M("venv"))[5]
        with open(m.M("venv", rel), "ab") as f:
            f.write(b"#patched")
        self.assertTrue(sfs.read_file(m.M("cache", rel)).endswith(b"#patched"))
        m.remount()
        self.check_venv(m, m.M("cache"), m.M("venv"), check_content=False)
        self.assertTrue(sfs.read_file(m.M("cache", rel)).endswith(b"#patched"))
        # the shared layer is checked unchanged at unmount (harness)

    def test_parallel_installs_from_shared_cache(self):
        """Several installers link the same shared-layer cache at once (uv
        links in parallel threads): every copy-up race ends with one file
        whose names all share one st_ino and count them in st_nlink."""
        n_inst = 4
        generate_cache(self.layers.L("cache"), n=800, seed=7)
        m = self.mount()
        procs = [subprocess.Popen(["cp", "-al", m.M("cache"), m.M("venv%d" % i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(n_inst)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            self.assertEqual((p.returncode, err), (0, ""))
        cfiles = files_of(m.M("cache"))
        self.assertEqual(len(cfiles), 800)
        bad = []
        for rel in cfiles:
            sts = [os.lstat(m.M("cache", rel))] + [os.lstat(m.M("venv%d" % i, rel))
                                                   for i in range(n_inst)]
            if len({st.st_ino for st in sts}) != 1 or {st.st_nlink for st in sts} != {n_inst + 1}:
                bad.append("%s: ino %s nlink %s" % (rel, [st.st_ino for st in sts],
                                                    [st.st_nlink for st in sts]))
        self.assertEqual(bad[:10], [], "%d files not one inode with %d names" % (len(bad), n_inst + 1))
        m.remount()
        rel = cfiles[len(cfiles) // 2]
        self.assertEqual(os.lstat(m.M("venv3", rel)).st_nlink, n_inst + 1)
        self.assertEqual(os.lstat(m.M("venv0", rel)).st_ino, os.lstat(m.M("cache", rel)).st_ino)

    def test_installer_ficlone_fallback(self):
        """uv >= 0.10.5 tries FICLONE first; it must fail fast so the
        installer falls back to hardlinks (cp --reflink=auto does the same
        dance)."""
        write_file(self.layers.L("cache", "a.py"), b"x" * 10000)
        m = self.mount()
        t0 = time.monotonic()
        p = sfs.run(["cp", "--reflink=always", m.M("cache", "a.py"), m.M("b.py")], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertLess(time.monotonic() - t0, 1.0)
        os.link(m.M("cache", "a.py"), m.M("c.py"))
        self.assertEqual(os.stat(m.M("c.py")).st_nlink, 2)


if __name__ == "__main__":
    sfs.main()
