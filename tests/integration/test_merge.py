"""Merged view: the local layer hides the shared one, whiteouts and opaque
directories in kernel overlayfs format, several shared layers, merged
directory listings with stable offsets while entries are removed."""

import ctypes
import os
import stat
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import read_file, write_file  # noqa: E402

import errno  # noqa: E402


def pad(i, tag):
    # Long names so a listing spans many getdents/FUSE readdir buffers.
    return "%s-%05d-%s" % (tag, i, "x" * 40)


class MergeTest(sfs.TestCase):

    def test_local_hides_shared(self):
        L, U = self.layers.L, self.layers.U
        write_file(L("same"), "lower")
        write_file(U("same"), "upper")
        write_file(L("only_lower"), "ol")
        write_file(U("only_upper"), "ou")
        # a directory in the local layer hides a file below, and vice versa
        write_file(L("file_below_dir_above"), "lowerfile")
        os.makedirs(U("file_below_dir_above"))
        write_file(U("file_below_dir_above", "inner"), "inner")
        os.makedirs(L("dir_below_file_above"))
        write_file(L("dir_below_file_above", "hidden"), "hidden")
        write_file(U("dir_below_file_above"), "upperfile")
        m = self.mount()
        self.assertContent(m.M("same"), "upper")
        self.assertContent(m.M("only_lower"), "ol")
        self.assertContent(m.M("only_upper"), "ou")
        self.assertTrue(os.path.isdir(m.M("file_below_dir_above")))
        self.assertEqual(os.listdir(m.M("file_below_dir_above")), ["inner"])
        self.assertTrue(stat.S_ISREG(os.lstat(m.M("dir_below_file_above")).st_mode))
        self.assertContent(m.M("dir_below_file_above"), "upperfile")
        self.assertEqual(sorted(os.listdir(m.mnt)),
                         ["dir_below_file_above", "file_below_dir_above",
                          "only_lower", "only_upper", "same"])

    def test_whiteout_chardev(self):
        L, U = self.layers.L, self.layers.U
        write_file(L("gone"), "x")
        write_file(L("kept"), "y")
        os.makedirs(L("gonedir", "sub"))
        write_file(L("gonedir", "sub", "f"), "z")
        sfs.make_whiteout(U("gone"))
        sfs.make_whiteout(U("gonedir"))
        sfs.make_whiteout(U("never_existed"))  # stray whiteout: hidden too
        m = self.mount()
        self.assertErrno(errno.ENOENT, os.lstat, m.M("gone"))
        self.assertErrno(errno.ENOENT, os.lstat, m.M("gonedir"))
        self.assertErrno(errno.ENOENT, os.lstat, m.M("gonedir", "sub", "f"))
        self.assertErrno(errno.ENOENT, os.lstat, m.M("never_existed"))
        self.assertErrno(errno.ENOENT, open, m.M("gone"))
        self.assertEqual(os.listdir(m.mnt), ["kept"])
        self.assertEqual([e.name for e in os.scandir(m.mnt)], ["kept"])
        # a new file over a whiteout: only the new content, no lower leftovers
        write_file(m.M("gone"), "new")
        self.assertContent(m.M("gone"), "new")
        os.mkdir(m.M("gonedir"))
        self.assertEqual(os.listdir(m.M("gonedir")), [])

    def test_whiteout_wh_file(self):
        L, U = self.layers.L, self.layers.U
        write_file(L("gone"), "x")
        write_file(L("kept"), "y")
        os.makedirs(L("d"))
        write_file(L("d", "gone2"), "x")
        write_file(L("d", "kept2"), "x")
        write_file(U(".wh.gone"), "")
        os.makedirs(U("d"))
        write_file(U("d", ".wh.gone2"), "")
        m = self.mount()
        self.assertErrno(errno.ENOENT, os.lstat, m.M("gone"))
        self.assertErrno(errno.ENOENT, os.lstat, m.M("d", "gone2"))
        self.assertEqual(sorted(os.listdir(m.mnt)), ["d", "kept"])
        self.assertEqual(sorted(os.listdir(m.M("d"))), ["kept2"])
        # the marker itself is not a name of the merged tree
        self.assertErrno(errno.ENOENT, os.lstat, m.M(".wh.gone"))

    def test_wh_marker_hides_only_below(self):
        """A ".wh." marker left next to a local name of the same name (the
        name was created again later) hides the shared one, never the local
        one, whatever order the directory is read in."""
        L, U = self.layers.L, self.layers.U
        names = ["n%02d" % i for i in range(40)]
        for n in names:
            write_file(L("d", n), "shared")
            write_file(U("d", ".wh." + n), "")
            write_file(U("d", n), "local")
        m = self.mount()
        self.assertEqual(sorted(os.listdir(m.M("d"))), names)
        self.assertEqual(read_file(m.M("d", "n07")), b"local")

    def test_opaque_dir(self):
        L, U = self.layers.L, self.layers.U
        write_file(L("d", "x"), "x")
        write_file(L("d", "sub", "y"), "y")
        os.makedirs(U("d"))
        os.setxattr(U("d"), "trusted.overlay.opaque", b"y")
        write_file(U("d", "z"), "z")
        write_file(L("e", "x"), "x")    # same shape, not opaque: merged
        write_file(U("e", "z"), "z")
        m = self.mount()
        self.assertEqual(os.listdir(m.M("d")), ["z"])
        self.assertErrno(errno.ENOENT, os.lstat, m.M("d", "x"))
        self.assertErrno(errno.ENOENT, os.lstat, m.M("d", "sub"))
        self.assertEqual(sorted(os.listdir(m.M("e"))), ["x", "z"])
        # the private marker does not show through the mount
        self.assertNotIn("trusted.overlay.opaque", os.listxattr(m.M("d")))

    def test_several_shared_layers(self):
        self.layers.cleanup()
        self.layers = sfs.Layers(nlower=3)
        L, U = self.layers.L, self.layers.U
        # a:b:c, a on top
        write_file(L("f", layer=0), "a")
        write_file(L("f", layer=1), "b")
        write_file(L("f", layer=2), "c")
        write_file(L("g", layer=1), "b")
        write_file(L("g", layer=2), "c")
        write_file(L("h", layer=2), "c")
        write_file(L("d", "in_a", layer=0), "a")
        write_file(L("d", "in_b", layer=1), "b")
        write_file(L("d", "in_c", layer=2), "c")
        write_file(L("d", "dup", layer=1), "b")
        write_file(L("d", "dup", layer=2), "c")
        write_file(U("d", "in_u"), "u")
        write_file(U("d", "dup"), "u")
        # a whiteout in a middle layer hides the name in the layers below
        write_file(L("wo", layer=2), "c")
        sfs.make_whiteout(L("wo", layer=1))
        # an opaque dir in the top shared layer hides the lower ones
        write_file(L("op", "from_a", layer=0), "a")
        os.setxattr(L("op", layer=0), "trusted.overlay.opaque", b"y")
        write_file(L("op", "from_b", layer=1), "b")
        write_file(L("op", "from_c", layer=2), "c")
        # a .wh. marker in a shared layer
        write_file(L("d", ".wh.in_c", layer=1), "")
        m = self.mount()
        self.assertContent(m.M("f"), "a")
        self.assertContent(m.M("g"), "b")
        self.assertContent(m.M("h"), "c")
        self.assertErrno(errno.ENOENT, os.lstat, m.M("wo"))
        self.assertEqual(sorted(os.listdir(m.M("d"))), ["dup", "in_a", "in_b", "in_u"])
        self.assertContent(m.M("d", "dup"), "u")
        self.assertEqual(os.listdir(m.M("op")), ["from_a"])
        self.assertEqual(sorted(os.listdir(m.mnt)), ["d", "f", "g", "h", "op"])
        # changes land in the local layer only; st_ino survives the copy-up
        # from the bottom layer and a remount
        inos = {n: os.stat(m.M(n)).st_ino for n in ("f", "g", "h", "d", "d/in_a", "d/in_b")}
        self.assertEqual(len(set(inos.values())), len(inos))
        with open(m.M("h"), "ab") as f:
            f.write(b"+")
        os.chmod(m.M("g"), 0o600)
        write_file(m.M("d", "new"), b"new")
        self.assertContent(m.M("h"), "c+")
        self.assertEqual(read_file(U("h")), b"c+")
        self.assertEqual({n: os.stat(m.M(n)).st_ino for n in inos}, inos)
        m.remount()
        self.assertEqual({n: os.stat(m.M(n)).st_ino for n in inos}, inos)
        self.assertContent(m.M("g"), "b")

    def test_listing_merges_each_name_once(self):
        self.layers.cleanup()
        self.layers = sfs.Layers(nlower=2)
        L, U = self.layers.L, self.layers.U
        expected = {}
        for i in range(300):
            n = "n%03d" % i
            where = i % 7
            if where in (0, 1, 2):
                write_file(L("d", n, layer=0), n)
            if where in (1, 3, 4):
                write_file(L("d", n, layer=1), n)
            if where in (2, 3, 5):
                write_file(U("d", n), n)
            if where == 6:          # whiteout over a lower name
                write_file(L("d", n, layer=1), n)
                sfs.make_whiteout(U("d", n))
            else:
                expected[n] = stat.S_IFREG
        os.makedirs(L("d", "subdir", layer=1))
        os.symlink("n000", L("d", "link", layer=0))
        expected["subdir"] = stat.S_IFDIR
        expected["link"] = stat.S_IFLNK
        m = self.mount()
        names = os.listdir(m.M("d"))
        self.assertEqual(len(names), len(set(names)), "names listed twice")
        self.assertEqual(sorted(names), sorted(expected))
        with os.scandir(m.M("d")) as it:
            entries = list(it)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            self.assertEqual(stat.S_IFMT(st.st_mode), expected[e.name], e.name)
            # d_type agrees with lstat
            self.assertEqual(e.is_dir(follow_symlinks=False), expected[e.name] == stat.S_IFDIR)
            self.assertEqual(e.is_symlink(), expected[e.name] == stat.S_IFLNK)
            # the inode number in the listing is the one stat reports
            self.assertEqual(e.inode(), st.st_ino, e.name)
        # ls -f includes . and ..
        out = sfs.run(["ls", "-a", "-1", m.M("d")]).stdout.split()
        self.assertEqual(sorted(out), sorted(list(expected) + [".", ".."]))

    def test_odd_names(self):
        names = [b"with space", b"new\nline", b"tab\there", "\u00fcml\u00e4ut".encode(),
                 b"\xff\xfe-not-utf8", b"-dash", b"...", b"a" * 255, b"#hash", b"back\\slash"]
        lower = os.fsencode(self.layers.L("odd"))
        os.makedirs(lower)
        for i, n in enumerate(names):
            with open(os.path.join(lower, n), "wb") as f:
                f.write(b"%d" % i)
        os.makedirs(self.layers.U("odd"))
        m = self.mount()
        d = os.fsencode(m.M("odd"))
        self.assertEqual(sorted(os.listdir(d)), sorted(names))
        for i, n in enumerate(names):
            self.assertContent(os.path.join(d, n), b"%d" % i)
        # the same names created, renamed and deleted through the mount
        for i, n in enumerate(names):
            os.rename(os.path.join(d, n), os.path.join(d, n[:200] + b".moved"))
            write_file(os.path.join(d, n), b"new %d" % i)
        self.assertEqual(len(os.listdir(d)), 2 * len(names))
        m.remount()
        for i, n in enumerate(names):
            self.assertContent(os.path.join(d, n), b"new %d" % i)
            self.assertContent(os.path.join(d, n[:200] + b".moved"), b"%d" % i)
            os.unlink(os.path.join(d, n))
        self.assertEqual(sorted(os.listdir(d)), sorted(n[:200] + b".moved" for n in names))

    def _big_merged_dir(self, n=3000, whiteouts=100):
        L, U = self.layers.L, self.layers.U
        os.makedirs(L("big"))
        os.makedirs(U("big"))
        names = set()
        for i in range(n):
            if i % 2:
                name = pad(i, "lo")
                write_file(L("big", name), "l%d" % i, mkdirs=False)
            else:
                name = pad(i, "up")
                write_file(U("big", name), "u%d" % i, mkdirs=False)
            names.add(name)
        for i in range(whiteouts):
            name = pad(i, "wo")
            write_file(L("big", name), "hidden", mkdirs=False)
            sfs.make_whiteout(U("big", name))
        return names

    def test_scandir_unlink_while_iterating(self):
        names = self._big_merged_dir()
        m = self.mount()
        seen = []
        with os.scandir(m.M("big")) as it:
            for e in it:
                seen.append(e.name)
                os.unlink(e.path)
        dups = sorted({n for n in seen if seen.count(n) > 1}) if len(seen) != len(set(seen)) else []
        self.assertEqual(dups, [], "names returned twice while unlinking")
        missing = names - set(seen)
        self.assertEqual(sorted(missing)[:10], [], "%d names skipped" % len(missing))
        self.assertEqual(set(seen), names)
        self.assertEqual(os.listdir(m.M("big")), [])
        os.rmdir(m.M("big"))
        self.assertFalse(os.path.lexists(m.M("big")))

    def test_rm_rf_large_tree(self):
        L, U = self.layers.L, self.layers.U
        # one directory of 3000 entries spread over both layers (plus
        # whiteouts), and nested merged directories around it
        names = self._big_merged_dir()
        os.rename(L("big"), L("top"))
        os.rename(U("big"), U("top"))
        for d in range(4):
            for i in range(100):
                sub = "top/d%d" % d if i % 3 else "top/d%d/s%d" % (d, i % 2)
                write_file((L if i % 2 else U)(sub, pad(i, "n")), "x")
        m = self.mount()
        self.assertEqual(len(os.listdir(m.M("top"))), len(names) + 4)
        p = sfs.run(["rm", "-rf", m.M("top")], check=False)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertFalse(os.path.lexists(m.M("top")))
        self.assertNotIn("top", os.listdir(m.mnt))
        self.assertWhiteout(U("top"))
        m.remount()
        self.assertFalse(os.path.lexists(m.M("top")))
        os.mkdir(m.M("top"))
        self.assertEqual(os.listdir(m.M("top")), [])

    def test_seekdir_offsets_stable(self):
        """telldir/seekdir through the merged listing: after seeking back,
        the same names follow, also when entries before the position were
        removed in between."""
        names = self._big_merged_dir(n=600, whiteouts=20)
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.opendir.restype = ctypes.c_void_p
        libc.opendir.argtypes = [ctypes.c_char_p]
        libc.readdir.restype = ctypes.c_void_p
        libc.readdir.argtypes = [ctypes.c_void_p]
        libc.telldir.restype = ctypes.c_long
        libc.telldir.argtypes = [ctypes.c_void_p]
        libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
        libc.closedir.argtypes = [ctypes.c_void_p]
        # struct dirent64: d_ino(8) d_off(8) d_reclen(2) d_type(1) d_name
        NAME_OFF = 19

        def next_name(dp):
            ent = libc.readdir(dp)
            if not ent:
                return None
            return ctypes.string_at(ent + NAME_OFF).decode()

        m = self.mount()
        dp = libc.opendir(os.fsencode(m.M("big")))
        self.assertTrue(dp)
        try:
            first = []
            while len(first) < 200:
                n = next_name(dp)
                self.assertIsNotNone(n)
                first.append(n)
            pos = libc.telldir(dp)
            second = [next_name(dp) for _ in range(100)]
            libc.seekdir(dp, pos)
            again = [next_name(dp) for _ in range(100)]
            self.assertEqual(again, second)
            # remove entries already returned, then continue from pos
            for n in first:
                if n not in (".", ".."):
                    os.unlink(m.M("big", n))
            libc.seekdir(dp, pos)
            rest = []
            while True:
                n = next_name(dp)
                if n is None:
                    break
                rest.append(n)
            self.assertEqual(rest[:100], second)
            got = [n for n in first + rest if n not in (".", "..")]
            self.assertEqual(len(got), len(set(got)), "names repeated")
            self.assertEqual(set(got), names)
        finally:
            libc.closedir(dp)


class DaemonTest(sfs.TestCase):

    def test_daemonizes_after_mount(self):
        write_file(self.layers.L("f"), "x")
        opts = sfs.format_options(self.layers.options())
        p = sfs.run([sfs.binary(), "-o", opts, self.layers.mnt], check=False, timeout=30)
        try:
            self.assertEqual(p.returncode, 0, p.stderr)
            # the mount exists the moment the command returned
            self.assertTrue(sfs.is_mounted(self.layers.mnt))
            self.assertContent(self.layers.M("f"), "x")
        finally:
            r = subprocess.run(["umount", self.layers.mnt], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertFalse(sfs.is_mounted(self.layers.mnt))
        # the background daemon goes away with its mount
        left = sfs.wait_for(lambda: not sfs.daemon_pids(self.layers.mnt), 10)
        pids = sfs.daemon_pids(self.layers.mnt)
        for pid in pids:
            os.kill(pid, 9)
        self.assertTrue(left, "daemon %s still running 10 s after umount" % pids)

    def test_unsuitable_layers_refused_before_mounting(self):
        lay = self.layers
        missing = lay.L("does-not-exist")
        cases = {
            "missing lowerdir": lay.options(lowerdir=missing),
            "missing upperdir": lay.options(upperdir=os.path.join(lay.base, "no-upper")),
            "lowerdir is a file": lay.options(lowerdir=os.path.join(lay.base, "afile")),
        }
        write_file(os.path.join(lay.base, "afile"), b"x")
        for what, opts in cases.items():
            p = sfs.run([sfs.binary(), "-f", "-o", sfs.format_options(opts), lay.mnt],
                        check=False, timeout=30)
            self.assertNotEqual(p.returncode, 0, what)
            self.assertFalse(sfs.is_mounted(lay.mnt), what)
            self.assertTrue(p.stderr.strip(), "%s: no message" % what)
            self.assertLessEqual(len(p.stderr.strip().splitlines()), 2,
                                 "%s: want one clear line, got:\n%s" % (what, p.stderr))

    def test_sigterm_unmounts_and_exits_0(self):
        write_file(self.layers.L("f"), "x")
        m = self.mount()
        self.assertContent(m.M("f"), "x")
        m.proc.terminate()
        try:
            rc = m.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            m.proc.kill()
            rc = m.proc.wait()
            self.fail("daemon did not exit within 20 s of SIGTERM")
        self.assertEqual(rc, 0, m.output())
        self.assertFalse(sfs.is_mounted(m.mnt), "SIGTERM left the mount behind")
        m.proc = None


if __name__ == "__main__":
    sfs.main()
