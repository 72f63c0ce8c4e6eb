"""What the kernel may cache (ops.h, "CACHING" in scratchfs(8)): names,
attributes and listings that come from the local layer alone are kept for
a day, and dropped by the kernel itself when it changes them through the
mount; anything that depends on a shared layer keeps `timeout`.

Request counts come from the daemon's -d log: each request it receives is
one "opcode: NAME" line."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402

TIMEOUT = 0.3


class CachingTest(sfs.TestCase):

    def debug_mount(self):
        return self.mount(extra_args=["-d"], timeout=str(TIMEOUT))

    def requests(self, m, fn):
        """The requests the daemon received while fn ran, but those about
        the root: it merges the shared root, so its attributes (which a
        path walk checks) are asked for again after `timeout`."""
        return sfs.request_counts(m, fn, skip_root=True)

    def test_local_names_outlive_timeout(self):
        sfs.write_file(self.layers.L("d", "shared.txt"), b"s")
        m = self.debug_mount()
        sfs.write_file(m.M("l", "local.txt"), b"l")
        os.stat(m.M("l", "local.txt"))
        os.stat(m.M("d", "shared.txt"))
        time.sleep(TIMEOUT * 3)
        local = self.requests(m, lambda: os.stat(m.M("l", "local.txt")))
        shared = self.requests(m, lambda: os.stat(m.M("d", "shared.txt")))
        self.assertEqual(sum(local.values()), 0, local)
        self.assertGreater(shared["LOOKUP"] + shared["GETATTR"], 0, shared)

    def test_missing_names(self):
        """A name missing from a local-only directory stays missing; a
        name missing from a merged one is asked for again."""
        sfs.write_file(self.layers.L("merged", "x"), b"x")
        m = self.debug_mount()
        os.mkdir(m.M("local"))
        # a local copy of the merged directory: its own name is local
        sfs.write_file(m.M("merged", "y"), b"y")
        time.sleep(TIMEOUT * 2)
        os.stat(m.M("merged"))  # looked up again, now as a local name
        for d in ("local", "merged"):
            self.assertFalse(os.path.exists(m.M(d, "nothing")))
        time.sleep(TIMEOUT * 3)
        local = self.requests(m, lambda: os.path.exists(m.M("local", "nothing")))
        merged = self.requests(m, lambda: os.path.exists(m.M("merged", "nothing")))
        self.assertEqual(local["LOOKUP"], 0, local)
        self.assertEqual(merged["LOOKUP"], 1, merged)
        # and a shared file appearing there shows within the timeout
        sfs.write_file(self.layers.L("merged", "nothing"), b"new")
        m.resnapshot()
        self.assertTrue(sfs.wait_for(lambda: os.path.exists(m.M("merged", "nothing"))))

    def test_local_listing_cached(self):
        sfs.write_file(self.layers.L("merged", "x"), b"x")
        m = self.debug_mount()
        for i in range(50):
            sfs.write_file(m.M("local", "f%d" % i), b"%d" % i)
        first = sorted(os.listdir(m.M("local")))
        self.assertEqual(len(first), 50)
        os.listdir(m.M("merged"))
        time.sleep(TIMEOUT * 3)
        local = self.requests(m, lambda: os.listdir(m.M("local")))
        merged = self.requests(m, lambda: os.listdir(m.M("merged")))
        self.assertEqual(local["READDIR"] + local["READDIRPLUS"], 0, local)
        self.assertGreater(merged["READDIR"] + merged["READDIRPLUS"], 0, merged)

    def test_cached_listing_follows_changes(self):
        """Every change made through the mount shows in the next listing
        of a cached local directory."""
        sfs.write_file(self.layers.L("merged", "from_shared"), b"s")
        m = self.mount()
        d = m.M("local")
        os.mkdir(d)
        sfs.write_file(m.M("local", "a"), b"a")
        ls = lambda: sorted(os.listdir(d))  # noqa: E731
        self.assertEqual(ls(), ["a"])
        sfs.write_file(m.M("local", "b"), b"b")
        self.assertEqual(ls(), ["a", "b"])
        os.link(m.M("local", "a"), m.M("local", "a2"))
        self.assertEqual(ls(), ["a", "a2", "b"])
        os.unlink(m.M("local", "a"))
        self.assertEqual(ls(), ["a2", "b"])
        os.rename(m.M("merged", "from_shared"), m.M("local", "moved"))
        self.assertEqual(ls(), ["a2", "b", "moved"])
        os.rename(m.M("local", "b"), m.M("merged", "b"))
        self.assertEqual(ls(), ["a2", "moved"])
        os.mkdir(m.M("local", "sub"))
        os.symlink("a2", m.M("local", "ln"))
        self.assertEqual(ls(), ["a2", "ln", "moved", "sub"])
        os.rmdir(m.M("local", "sub"))
        os.unlink(m.M("local", "ln"))
        self.assertEqual(ls(), ["a2", "moved"])
        self.assertEqual(sfs.read_file(m.M("local", "moved")), b"s")
        self.assertEqual(sorted(os.listdir(m.M("merged"))), ["b"])

    def test_local_attributes_follow_changes(self):
        m = self.mount(timeout=str(TIMEOUT))
        p = m.M("f")
        sfs.write_file(p, b"12345")
        self.assertEqual(os.stat(p).st_size, 5)
        with open(p, "ab") as f:
            f.write(b"678")
        self.assertEqual(os.stat(p).st_size, 8)
        os.chmod(p, 0o600)
        self.assertEqual(os.stat(p).st_mode & 0o777, 0o600)
        os.link(p, m.M("g"))
        self.assertEqual(os.stat(p).st_nlink, 2)
        os.unlink(m.M("g"))
        self.assertEqual(os.stat(p).st_nlink, 1)
        os.truncate(p, 2)
        time.sleep(TIMEOUT * 2)
        self.assertEqual(os.stat(p).st_size, 2)
        self.assertEqual(sfs.read_file(p), b"12")

    def test_shared_name_of_copied_hardlink_stays_live(self):
        """A file hardlinked in the shared layer and copied up through one
        name: the other name is still the shared layer's, and its removal
        there shows within the timeout although the file is now local."""
        sfs.write_file(self.layers.L("a"), b"data")
        os.link(self.layers.L("a"), self.layers.L("b"))
        m = self.mount(timeout=str(TIMEOUT))
        with open(m.M("a"), "ab") as f:  # copy-up through "a"
            f.write(b"+")
        self.assertEqual(sfs.read_file(m.M("b")), b"data+")
        self.assertEqual(os.stat(m.M("b")).st_nlink, 2)
        os.unlink(self.layers.L("b"))
        m.resnapshot()
        self.assertTrue(sfs.wait_for(lambda: not os.path.exists(m.M("b"))))
        self.assertEqual(sfs.read_file(m.M("a")), b"data+")

    def test_metacopy_data_keeps_timeout(self):
        """A link of a shared file copies metadata only: its size still
        comes from the shared file, so it is not cached for long."""
        sfs.write_file(self.layers.L("lib", "mod.py"), b"v1")
        m = self.mount(timeout=str(TIMEOUT))
        os.link(m.M("lib", "mod.py"), m.M("lib", "alias.py"))
        self.assertEqual(os.stat(m.M("lib", "alias.py")).st_size, 2)
        sfs.write_file(self.layers.L("lib", "mod.py"), b"version 2")
        m.resnapshot()
        self.assertTrue(sfs.wait_for(
            lambda: os.stat(m.M("lib", "alias.py")).st_size == 9))
        self.assertEqual(sfs.read_file(m.M("lib", "alias.py")), b"version 2")


if __name__ == "__main__":
    sfs.main()
