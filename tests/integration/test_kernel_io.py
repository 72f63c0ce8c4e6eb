"""The raw FUSE protocol below libfuse 3.14 (src/kernel_io.c, loop.c,
passthrough.c): what the kernel really does with each lever on.

Request counts come from the daemon's -d log: each request it receives is
one "opcode: NAME" line."""

import errno
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402

MiB = 1024 * 1024


def connection_dir(mnt):
    """/sys/fs/fuse/connections/N of the mount (N = its device minor)."""
    return "/sys/fs/fuse/connections/%d" % os.minor(os.stat(mnt).st_dev)


def waiting(conn):
    with open(os.path.join(conn, "waiting")) as f:
        return int(f.read())


def cpu_ticks(pid):
    """utime + stime of every thread of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


class KernelIoTest(sfs.TestCase):

    def debug_mount(self, *args, **opts):
        return self.mount(extra_args=["-d"] + list(args), **opts)

    def requests(self, m, fn):
        return sfs.request_counts(m, fn)

    # -- FUSE_PARALLEL_DIROPS
    def outstanding_lookups(self, m, n):
        """With the daemon stopped, n threads look up n new names in one
        directory; how many LOOKUPs reach the device at once."""
        os.mkdir(m.M("d"))
        os.stat(m.M("d"))
        conn = connection_dir(m.mnt)  # a stat of the mount: not once stopped
        daemon = m.proc.pid
        os.kill(daemon, signal.SIGSTOP)
        try:
            threads = [threading.Thread(target=sfs.errno_of,
                                        args=(os.stat, m.M("d", "x%d" % i)))
                       for i in range(n)]
            for t in threads:
                t.daemon = True
                t.start()
            sfs.wait_for(lambda: waiting(conn) >= n, timeout=2.0)
            seen = waiting(conn)
        finally:
            os.kill(daemon, signal.SIGCONT)
        for t in threads:
            t.join(10)
        return seen

    def test_parallel_lookups_in_one_directory(self):
        """libfuse 3.14 never puts FUSE_PARALLEL_DIROPS into its INIT
        reply; scratchfs does, so the kernel sends concurrent LOOKUPs of
        one directory instead of queueing them on the directory's lock."""
        m = self.mount()
        self.assertEqual(self.outstanding_lookups(m, 4), 4)

    # -- the busy-polling reader
    def test_idle_mount_uses_no_cpu(self):
        m = self.mount(busy_poll="50")
        sfs.write_file(m.M("f"), b"x")
        for _ in range(200):
            os.stat(m.M("f"))
        time.sleep(0.5)
        before = cpu_ticks(m.proc.pid)
        time.sleep(5)
        used = cpu_ticks(m.proc.pid) - before
        self.assertLessEqual(used, 1, "idle daemon used %d ticks in 5 s" % used)

    def test_one_spinner(self):
        """While a program keeps the mount busy, the daemon's CPU time
        stays below one CPU's worth plus the requests' own work: at most
        one thread spins."""
        m = self.mount(busy_poll="50")
        sfs.write_file(m.M("f"), b"x")
        before = cpu_ticks(m.proc.pid)
        t0 = time.monotonic()
        end = t0 + 2
        while time.monotonic() < end:
            os.stat(m.M("f"))
            time.sleep(0.001)  # gaps the spinner waits through
        wall = time.monotonic() - t0
        used = (cpu_ticks(m.proc.pid) - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, wall * 1.1, "daemon used %.2f s CPU in %.2f s" % (used, wall))

    def spins(self, m):
        """The reader's busy-polls so far: (caught a request, missed)."""
        text = os.getxattr(m.mnt, "user.scratchfs.status").decode()
        values = dict(line.split(" ", 1) for line in text.splitlines())
        return int(values["spins_caught"]), int(values["spins_missed"])

    def tight_loop(self, m, name, n=2000):
        """A client calling in a loop: getxattr of a file in a local-only
        directory (never cached by the kernel, answered by the reader)."""
        os.mkdir(m.M(name))
        sfs.write_file(m.M(name, "f"), b"x")
        path = m.M(name, "f")
        for _ in range(n):
            self.assertEqual(sfs.errno_of(os.getxattr, path, "user.none"),
                             errno.ENODATA)

    def test_spins_for_a_busy_client(self):
        """By default the reader catches a tight loop's requests spinning
        (far more spins catch one than miss); with busy_poll=0 it never
        spins."""
        m = self.mount(busy_poll="0")
        self.tight_loop(m, "d0")
        self.assertEqual(self.spins(m), (0, 0))
        m.umount()
        m = self.mount()
        self.tight_loop(m, "d1")
        caught, missed = self.spins(m)
        # A slow daemon (sanitizers) often finds the next request already
        # there, which needs no spin: so not "most of 2000", but many.
        self.assertGreater(caught, 100, (caught, missed))
        self.assertGreater(caught, 2 * missed, (caught, missed))

    def test_no_spin_while_a_worker_answers(self):
        """WRITE goes to a worker thread: the client's next request waits
        for that worker's reply, so the reader does not spin for it (each
        such spin missed before: 120 in 500 writes; since, at most 10, and
        41 with the daemon built for ThreadSanitizer)."""
        m = self.mount()
        fd = os.open(m.M("f"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for i in range(500):
                os.pwrite(fd, b"x", i)
        finally:
            os.close(fd)
        self.assertEqual(os.path.getsize(m.M("f")), 500)
        caught, missed = self.spins(m)
        self.assertLess(missed, 60, "%d spins missed (%d caught)" % (missed, caught))

    def test_no_spin_for_a_slow_client(self):
        """Requests 5 ms apart with busy_poll=2000: a spin would catch none
        of them, so the reader stops spinning (before, it burnt 2 ms of
        every 5)."""
        m = self.mount(busy_poll="2000")
        sfs.write_file(m.M("f"), b"x")
        before = cpu_ticks(m.proc.pid)
        t0 = time.monotonic()
        while time.monotonic() < t0 + 3:
            sfs.errno_of(os.getxattr, m.M("f"), "user.none")
            time.sleep(0.005)
        wall = time.monotonic() - t0
        used = (cpu_ticks(m.proc.pid) - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, wall * 0.15, "daemon used %.2f s CPU in %.2f s" % (used, wall))
        caught, missed = self.spins(m)
        self.assertLess(missed, 60, "%d spins missed (%d caught)" % (missed, caught))

    def test_busy_poll_limits(self):
        m = self.mount(busy_poll="10000")
        sfs.write_file(m.M("f"), b"abc")
        self.assertEqual(sfs.read_file(m.M("f")), b"abc")

    # -- FUSE_CAP_CACHE_SYMLINKS
    def test_symlink_target_cached(self):
        os.symlink("target", self.layers.L("link"))
        m = self.debug_mount()
        self.assertEqual(os.readlink(m.M("link")), "target")
        seen = self.requests(m, lambda: [os.readlink(m.M("link"))
                                         for _ in range(3)])
        self.assertEqual(seen["READLINK"], 0, seen)

    # -- FUSE_CAP_NO_OPENDIR_SUPPORT
    def test_listings_without_opendir(self):
        """No OPENDIR or RELEASEDIR (but the first, answered ENOSYS); a
        local listing is read once."""
        m = self.debug_mount()
        os.listdir(m.M())
        for i in range(50):
            sfs.write_file(m.M("d", "f%02d" % i), b"x")
        first = self.requests(m, lambda: sorted(os.listdir(m.M("d"))))
        self.assertEqual(first["OPENDIR"] + first["RELEASEDIR"], 0, first)
        self.assertGreater(first["READDIRPLUS"] + first["READDIR"], 0, first)
        again = self.requests(m, lambda: sorted(os.listdir(m.M("d"))))
        # (at most a GETATTR: the kernel checks the directory's mtime)
        self.assertEqual(sum(again.values()) - again["GETATTR"], 0, again)
        os.unlink(m.M("d", "f07"))
        self.assertNotIn("f07", os.listdir(m.M("d")))
        self.assertEqual(len(os.listdir(m.M("d"))), 49)

    def test_opendir_option_off(self):
        m = self.debug_mount(no_opendir="off")
        os.mkdir(m.M("d"))
        seen = self.requests(m, lambda: os.listdir(m.M("d")))
        self.assertEqual(seen["OPENDIR"], 1, seen)

    def test_shared_listing_refreshed_after_timeout(self):
        """The kernel keeps a merged listing only for `timeout`."""
        sfs.write_file(self.layers.L("d", "a"), b"a")
        m = self.mount(timeout="0.3")
        sfs.write_file(m.M("d", "local"), b"l")
        self.assertEqual(sorted(os.listdir(m.M("d"))), ["a", "local"])
        sfs.write_file(self.layers.L("d", "b"), b"b")
        m.resnapshot()
        self.assertTrue(sfs.wait_for(
            lambda: sorted(os.listdir(m.M("d"))) == ["a", "b", "local"],
            timeout=3.0), os.listdir(m.M("d")))

    def test_remove_while_listing(self):
        """Names removed while a program walks the directory neither
        make it skip nor repeat a name (offsets carry the snapshot)."""
        m = self.mount()
        names = ["f%04d" % i for i in range(600)]
        for n in names:
            sfs.write_file(m.M("d", n), b"")
        seen = []
        with os.scandir(m.M("d")) as it:
            for e in it:
                seen.append(e.name)
                os.unlink(e.path)
        self.assertEqual(sorted(seen), names)
        self.assertEqual(os.listdir(m.M("d")), [])

    # -- FUSE passthrough
    def test_passthrough_local_data(self):
        """Reads of a large local file never reach the daemon; writes do
        (the daemon counts what they allocate, see test_status.py)."""
        m = self.debug_mount()
        data = os.urandom(4 * MiB)
        seen = self.requests(m, lambda: sfs.write_file(m.M("f"), data))
        self.assertGreater(seen["WRITE"], 0, seen)
        drop_caches()
        seen = self.requests(m, lambda: self.assertEqual(
            sfs.read_file(m.M("f")), data))
        self.assertEqual(seen["READ"], 0, seen)
        self.assertEqual(sfs.read_file(self.layers.U("f")), data)
        self.assertEqual(os.stat(m.M("f")).st_size, len(data))

    def test_small_files_read_through_the_daemon(self):
        """A small file opened for reading keeps the page cache across
        opens (keep_cache) instead of a backing file; an open for writing
        meanwhile shares its kind."""
        sfs.write_file(self.layers.U("small"), b"s" * 1000)
        m = self.debug_mount()
        drop_caches()
        seen = self.requests(m, lambda: sfs.read_file(m.M("small")))
        self.assertGreater(seen["READ"], 0, seen)
        with open(m.M("small"), "rb") as r, open(m.M("small"), "r+b") as w:
            w.write(b"t")
            w.flush()
            self.assertEqual(r.read(2), b"ts")
        self.assertEqual(sfs.read_file(m.M("small"))[:2], b"ts")

    def test_passthrough_off(self):
        m = self.debug_mount(passthrough="off")
        sfs.write_file(m.M("f"), b"y" * MiB)
        drop_caches()
        seen = self.requests(m, lambda: sfs.read_file(m.M("f")))
        self.assertGreater(seen["READ"], 0, seen)

    def test_shared_then_copied_up_while_open(self):
        """A shared file open for reading keeps its old data while another
        open copies it up and rewrites it; the next open sees the new
        data, and both kinds of open coexist on one inode."""
        sfs.write_file(self.layers.L("f"), b"old")
        m = self.mount()
        with open(m.M("f"), "rb") as r:
            with open(m.M("f"), "r+b") as w:
                w.write(b"new")
                w.flush()
                self.assertEqual(r.read(), b"old")
            with open(m.M("f"), "rb") as r2:
                self.assertEqual(r2.read(), b"new")
        with open(m.M("f"), "rb") as r3, open(m.M("f"), "ab") as a:
            a.write(b"!")
            a.flush()
            self.assertEqual(r3.read(), b"new!")
        self.assertEqual(sfs.read_file(self.layers.U("f")), b"new!")
        self.assertEqual(sfs.read_noatime(self.layers.L("f")), b"old")

    def test_passthrough_mmap_and_truncate(self):
        import mmap
        m = self.mount()
        sfs.write_file(m.M("f"), b"a" * 8192)
        with open(m.M("f"), "r+b") as f:
            mm = mmap.mmap(f.fileno(), 8192)
            mm[0:4] = b"bbbb"
            mm.flush()
            mm.close()
        self.assertEqual(sfs.read_file(self.layers.U("f"))[:5], b"bbbba")
        with open(m.M("f"), "wb") as f:
            f.write(b"z")
        self.assertEqual(os.stat(m.M("f")).st_size, 1)
        self.assertEqual(sfs.read_file(m.M("f")), b"z")


if __name__ == "__main__":
    # fusectl (for the connection's "waiting" count) is mounted, when
    # missing, only in this process's own mount namespace.
    sfs.enter_private_namespace()
    if not os.path.exists("/sys/fs/fuse/connections/"):
        raise SystemExit("no /sys/fs/fuse/connections")
    if not os.listdir("/sys/fs/fuse/connections") and not sfs.is_mounted(
            "/sys/fs/fuse/connections"):
        sfs.run(["mount", "-t", "fusectl", "fusectl", "/sys/fs/fuse/connections"])
    sfs.main()
