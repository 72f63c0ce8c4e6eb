#!/usr/bin/env python3
"""Benchmark driver for scratchfs: see tests/bench/README.md.

Runs the same operations on a synthetic uv cache for each target (native
directory, kernel overlayfs, fuse-overlayfs, scratchfs variants) in one run,
several repetitions interleaved across targets, and prints median times and
ratios to native as markdown tables on stdout.  Progress goes to stderr.

Normally started by run.sh, which sets BENCH_RUNDIR and unmounts anything left
under it should this process die.
"""

import datetime
import gzip
import hashlib
import json
import os
import resource
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True          # no __pycache__ in the source tree
import gencache  # noqa: E402
import uvbench  # noqa: E402

# Operations in table order.  parN = N concurrent installers; mem = daemon RSS;
# uv, uvseed = real uv installs (uvbench.py).
ALL_OPS = ["link", "seedlink", "stat", "readcold", "readwarm", "import", "rm",
           "uv", "uvseed", "par2", "par8", "mem"]
LINK_PHASE_OPS = {"link", "stat", "readcold", "readwarm", "import", "rm"}
# copy: uv's copy fallback, the cache on /var/tmp and the venv on another
# filesystem (a loop-mounted ext4 image); it runs the uv rows only.
KINDS = ("native", "overlay", "fuse-overlayfs", "scratchfs", "copy", "passthrough_ll")
# libfuse's own example, built at run time from Debian's libfuse3-dev
# documentation (never part of this project).
PASSTHROUGH_LL_SRC = "/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c"
# Rows a one-directory passthrough can run (it has no shared layer).
ONE_DIR_OPS = LINK_PHASE_OPS | {"mem"}
MEM_ROWS = [("idle", "idle after mount"), ("installed", "after install"),
            ("removed", "after install + rm"), ("forgotten", "after drop_caches 2")]


class BenchError(Exception):
    pass


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise BenchError("%s must be an integer" % name)


# --------------------------------------------------------------------------
# running commands and keeping track of mounts

TIMEOUT = 900                    # BENCH_TIMEOUT, set by Bench()
NOTES_MARKER = "<!-- notes: kept when --write-results rewrites this file -->"
MOUNTS = []                      # Target objects currently mounted


def run(cmd, **kw):
    """Run a command; any failure (exit status, timeout) is a BenchError."""
    try:
        p = subprocess.run(cmd, stdout=kw.pop("stdout", subprocess.PIPE),
                           stderr=subprocess.PIPE, text=True,
                           timeout=kw.pop("timeout", TIMEOUT), **kw)
    except subprocess.TimeoutExpired:
        raise BenchError("timed out after %d s: %s" % (TIMEOUT, shlex.join(cmd)))
    if p.returncode != 0:
        raise BenchError("failed (exit %d): %s\n%s" % (p.returncode, shlex.join(cmd),
                                                       p.stderr.strip()[-2000:]))
    return p.stdout


def drop_caches(level):
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("%d\n" % level)


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def cpuidle():
    """How idle CPUs wait: a virtual CPU that halts at once makes every
    cross-CPU wake-up (each FUSE round trip has two) cost a host wake-up
    (man scratchfs, PERFORMANCE)."""
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None
    driver = read("/sys/devices/system/cpu/cpuidle/current_driver") or "none"
    poll = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
    return driver + ("" if poll is None else ", guest_halt_poll_ns %s" % poll)


def die_with_parent():
    """In a daemon about to exec: SIGTERM when the driver dies (even by SIGKILL),
    and as many file descriptors as it may have: scratchfs raises its own
    limit, passthrough_ll does not and holds one per inode (20,000 files need
    more than 20,000; where even the hard limit is lower, it fails with EMFILE
    and the run stops)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    with open("/proc/sys/fs/nr_open") as f:
        want = int(f.read())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for n in (want, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            return
        except (ValueError, OSError):
            pass


def mount_holders(path):
    """Processes (in other mount namespaces) whose mount table still has path."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/mountinfo" % pid) as f:
                if any(line.split()[4] == path for line in f):
                    with open("/proc/%s/comm" % pid) as c:
                        found.append("%s(%s)" % (pid, c.read().strip()))
        except OSError:
            pass
    return found[:10]


def cpu_seconds(pid):
    """utime + stime of every thread of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_passthrough_ll(rundir):
    """Compile libfuse's passthrough_ll example into rundir; its path."""
    src = PASSTHROUGH_LL_SRC
    if not os.path.exists(src) and os.path.exists(src + ".gz"):
        with gzip.open(src + ".gz", "rb") as f, open(os.path.join(rundir, "passthrough_ll.c"), "wb") as o:
            o.write(f.read())
        src = os.path.join(rundir, "passthrough_ll.c")
    if not os.path.exists(src):
        raise BenchError("target passthrough_ll needs %s (apt install libfuse3-dev)" % src)
    os.makedirs(os.path.join(rundir, "bin"), exist_ok=True)
    out = os.path.join(rundir, "bin", "passthrough_ll")
    if os.access(out, os.X_OK):
        return out
    flags = run(["pkg-config", "--cflags", "--libs", "fuse3"]).split()
    run(["cc", "-O2", "-o", out, "-I", os.path.dirname(PASSTHROUGH_LL_SRC), src] + flags)
    return out


def context_switches(pid):
    """Voluntary context switches of every thread of pid so far: each is
    a sleep, so each wake-up of the daemon counts one."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, task)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            pass                        # a thread that just ended
    return total


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


class View:
    """Where a mounted target keeps the cache and where venvs go."""

    def __init__(self, root, cache):
        self.root, self.cache = root, cache

    def venv(self, i=None):
        return os.path.join(self.root, "venv" if i is None else "venv%d" % i)

    @property
    def uvcache(self):
        """The warm uv cache, beside the synthetic one."""
        return os.path.join(os.path.dirname(self.cache), "uvcache")


class Target:
    """One column of the tables: a kind plus extra mount arguments.

    Spec: KIND[:ARG,ARG...]; an ARG starting with '-' is a command-line flag
    ('-o' itself is ignored), bin=PATH runs another scratchfs binary, any
    other ARG is added to the -o option list.
    """

    def __init__(self, spec, rundir, gen_seed):
        kind, _, extra = spec.partition(":")
        if kind not in KINDS:
            raise BenchError("unknown target %r (kinds: %s)" % (spec, ", ".join(KINDS)))
        self.label, self.kind = spec, kind
        self.flags, self.opts = [], []
        binary = None
        for tok in [t for t in extra.split(",") if t]:
            if tok.startswith("bin="):
                binary = tok[4:]  # another build, e.g. before and after a change
            elif tok != "-o":
                (self.flags if tok.startswith("-") else self.opts).append(tok)
        envopts = {"scratchfs": "BENCH_SCRATCHFS_OPTS",
                   "fuse-overlayfs": "BENCH_FUSE_OVERLAYFS_OPTS"}.get(kind)
        words = shlex.split(os.environ.get(envopts, "")) if envopts else []
        while words:
            w = words.pop(0)
            if w == "-o" and words:
                self.opts += [o for o in words.pop(0).split(",") if o]
            elif w.startswith("-o"):
                self.opts += [o for o in w[2:].split(",") if o]
            else:
                self.flags.append(w)
        if kind in ("native", "copy") and (self.flags or self.opts):
            raise BenchError("target %s takes no options" % kind)
        if kind == "overlay" and self.flags:
            raise BenchError("target overlay takes -o options only")
        self.binary = None
        if kind == "fuse-overlayfs":
            self.binary = shutil.which("fuse-overlayfs")
        elif kind == "scratchfs":
            self.binary = binary or os.environ.get("SCRATCHFS_BIN")
            if not self.binary:
                raise BenchError("target %s needs SCRATCHFS_BIN" % spec)
        elif kind == "passthrough_ll":
            self.binary = build_passthrough_ll(rundir)
        if self.fuse and not (self.binary and os.access(self.binary, os.X_OK)):
            raise BenchError("target %s: no executable %s" % (spec, self.binary or kind))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)
        self.dir = os.path.join(rundir, safe)
        self.gen_seed = gen_seed
        self.proc = None
        self.mnt = None
        self.daemon_log = os.path.join(self.dir, "daemon.log")

    @property
    def fuse(self):
        return self.kind in ("fuse-overlayfs", "scratchfs", "passthrough_ll")

    def runs(self, op):
        """copy (uv's fallback) runs the uv rows only; passthrough_ll serves
        one directory: no shared layer, no uv cache."""
        if self.kind == "copy":
            return op in uvbench.UV_OPS
        if self.kind == "passthrough_ll":
            return op in ONE_DIR_OPS or op.startswith("par")
        return True

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def prepare(self, uvset=None):
        """Create the layer directories and the local-layer copies of the
        caches (the synthetic one; the warm uv cache when uv rows run)."""
        for d in ("lower-empty", "upper", "work", "mnt"):
            os.makedirs(self.path(d), exist_ok=True)
        if self.kind != "copy" and not os.path.exists(self.path("upper", "cache")):
            run(["cp", "-a", os.path.join(self.gen_seed, "cache"), self.path("upper", "cache")])
        if uvset and not os.path.exists(self.path("upper", "uvcache")):
            run(["cp", "-a", os.path.join(uvset.seed, "uvcache"), self.path("upper", "uvcache")])
        if self.kind == "copy":
            img = self.path("venvfs.img")
            run(["truncate", "-s", "8G", img])
            run(["mkfs.ext4", "-q", "-F", img])
        self.mount("link")              # fail now, not after an hour, if it cannot mount
        self.unmount()

    def mount(self, layout, extra_flags=(), seed=None):
        """Mount with the cache in the local layer ('link') or shared layer
        ('seed': lowerdir is `seed`, by default the synthetic cache's)."""
        if layout == "link":
            lower, upper, work = self.path("lower-empty"), self.path("upper"), self.path("work")
        else:
            lower, upper, work = seed or self.gen_seed, self.path("seed-upper"), self.path("seed-work")
            for d in (upper, work):
                if os.path.exists(d):
                    shutil.rmtree(d)
                os.makedirs(d)
        if self.kind == "native":
            cache = os.path.join(upper if layout == "link" else lower, "cache")
            return View(upper, cache)
        if self.kind == "copy":         # venvs on their own ext4, the cache on /var/tmp
            run(["mount", "-o", "loop", self.path("venvfs.img"), self.path("mnt")])
            MOUNTS.append(self)
            self.mnt = self.path("mnt")
            return View(self.mnt, os.path.join(upper, "cache"))
        mnt = self.path("mnt")
        if mounted(mnt):
            raise BenchError("%s is still mounted" % mnt)
        if self.kind == "passthrough_ll":
            if layout != "link":
                raise BenchError("passthrough_ll has no shared layer")
            opts = ",".join(["source=" + upper] + self.opts)
        else:
            opts = ",".join(["lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work]
                            + self.opts)
        if self.kind == "overlay":
            run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt])
            MOUNTS.append(self)
        else:
            cmd = [self.binary, "-f"] + self.flags + list(extra_flags) + ["-o", opts, mnt]
            logf = open(self.daemon_log, "ab")
            logf.write(("\n== %s\n" % shlex.join(cmd)).encode())
            logf.flush()
            # Own session: a ^C must reach us, not kill the daemon under a
            # running operation; we unmount it ourselves on the way out.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent)
            logf.close()
            MOUNTS.append(self)
            deadline = time.monotonic() + 20
            while not mounted(mnt):
                if self.proc.poll() is not None:
                    raise BenchError("%s failed to mount (exit %s):\n%s" % (
                        self.label, self.proc.returncode, self.log_tail()))
                if time.monotonic() > deadline:
                    raise BenchError("%s: no mount after 20 s:\n%s" % (self.label, self.log_tail()))
                time.sleep(0.01)
        self.mnt = mnt
        if os.stat(mnt).st_dev == os.stat(self.dir).st_dev:
            raise BenchError("%s: %s is not a separate filesystem" % (self.label, mnt))
        return View(mnt, os.path.join(mnt, "cache"))

    def log_tail(self):
        try:
            with open(self.daemon_log, "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def unmount(self, force=False):
        """Unmount; fails loudly if the daemon died or will not let go."""
        if self.kind == "native" or self not in MOUNTS:
            return
        mnt = self.path("mnt")
        err = None
        if mounted(mnt):
            kernel = self.kind in ("overlay", "copy")
            cmd = (["umount"] if kernel else ["fusermount3", "-u"]) + [mnt]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                err = "unmount of %s failed: %s" % (mnt, p.stderr.strip())
                lazy = ["umount", "-l"] if kernel else ["fusermount3", "-uz"]
                subprocess.run(lazy + [mnt], capture_output=True)
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                holders = mount_holders(mnt)
                self.proc.kill()              # only the daemon we started
                rc = self.proc.wait()
                err = err or "%s daemon did not exit within 30 s of the unmount%s" % (
                    self.label, "; processes still seeing the mount: " + " ".join(holders)
                    if holders else "")
            if rc != 0 and not force:
                err = err or "%s daemon exited with status %d:\n%s" % (self.label, rc,
                                                                         self.log_tail())
            self.proc = None
        MOUNTS.remove(self)
        self.mnt = None
        if err and not force:
            raise BenchError(err)

    def version(self):
        if self.kind in ("native", "overlay"):
            return "kernel " + platform.release()
        if self.kind == "copy":
            return "uv's copy fallback: cache on this disk, venv on a loop-mounted ext4 image"
        try:
            out = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=10)
            lines = (out.stdout + out.stderr).strip().splitlines()
        except subprocess.TimeoutExpired:
            lines = []
        with open(self.binary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return "%s (%s, sha256 %s)" % ("; ".join(lines[:2]) or "?", self.binary, digest)


def cleanup_mounts():
    for t in list(MOUNTS):
        try:
            t.unmount(force=True)
        except Exception as e:   # keep going: every mount must go
            log("cleanup: %s" % e)


# --------------------------------------------------------------------------
# the operations


class Bench:
    def __init__(self):
        global TIMEOUT
        TIMEOUT = env_int("BENCH_TIMEOUT", 900)
        self.reps = env_int("BENCH_REPS", 5)
        self.nfiles = env_int("BENCH_FILES", gencache.DEFAULT_FILES)
        self.seed = env_int("BENCH_SEED", gencache.DEFAULT_SEED)
        self.base = os.environ.get("BENCH_DIR", gencache.DEFAULT_BASE)
        self.rundir = os.environ.get("BENCH_RUNDIR") or os.path.join(self.base, "run-%d" % os.getpid())
        self.ops = os.environ.get("BENCH_OPS", " ".join(ALL_OPS)).replace(",", " ").split()
        for op in self.ops:
            if op not in ALL_OPS and not (op.startswith("par") and op[3:].isdigit()):
                raise BenchError("unknown op %r (ops: %s, parN)" % (op, " ".join(ALL_OPS)))
        self.par_reps = env_int("BENCH_PAR_REPS", min(self.reps, 3))
        specs = os.environ.get("BENCH_TARGETS", "native overlay fuse-overlayfs scratchfs").split()
        if len(set(specs)) != len(specs):
            raise BenchError("BENCH_TARGETS lists a target twice")
        if self.reps < 1 or self.nfiles < 100:
            raise BenchError("need BENCH_REPS >= 1 and BENCH_FILES >= 100")
        os.makedirs(self.rundir, exist_ok=True)
        self.gen_root, self.m = gencache.ensure(self.base, self.nfiles, self.seed, log=log)
        self.gen_seed = os.path.join(self.gen_root, "seed")
        self.targets = [Target(s, self.rundir, self.gen_seed) for s in specs]
        self.uv = None
        if set(uvbench.UV_OPS) & set(self.ops):
            try:
                self.uv = uvbench.UvSet(self.base, log)
            except (uvbench.UvError, uvbench.uv_env.SetupError) as e:
                raise BenchError(str(e))
        self.times = {t.label: {} for t in self.targets}     # label -> op -> [s]
        self.cpu = {t.label: {} for t in self.targets}       # label -> op -> [daemon CPU s]
        self.mem = {}                                          # label -> row -> KiB

    # -- checks: a broken filesystem must fail, not look fast

    def check_links(self, view, venvs, nlink):
        for rel in self.m["samples"]:
            a = os.lstat(os.path.join(view.cache, rel))
            if a.st_nlink != nlink:
                raise BenchError("%s: nlink %d, expected %d" % (
                    os.path.join(view.cache, rel), a.st_nlink, nlink))
            for venv in venvs:
                b = os.lstat(os.path.join(venv, rel))
                if (b.st_ino, b.st_nlink, b.st_size) != (a.st_ino, nlink, a.st_size):
                    raise BenchError("%s: ino/nlink/size %d/%d/%d, expected %d/%d/%d" % (
                        os.path.join(venv, rel), b.st_ino, b.st_nlink, b.st_size,
                        a.st_ino, nlink, a.st_size))

    def check_counts(self, what, got):
        want = (self.m["files"], self.m["dirs"], self.m["bytes"])
        if got != want:
            raise BenchError("%s: files/dirs/bytes %s, expected %s" % (what, got, want))

    def leftovers(self, t, venv):
        """What a failed rm -rf left, seen through the mount and in upperdir."""
        lines = []
        for root in (venv, os.path.join(t.path("upper"), os.path.basename(venv))
                     if t.kind != "native" else None):
            if not root:
                continue
            found = []
            for dirpath, dirnames, filenames in os.walk(root):
                found += [os.path.join(dirpath, n) for n in filenames]
                if not dirnames and not filenames:
                    found.append(dirpath + "/")
            lines.append("left in %s: %d entries %s" % (root, len(found), found[:6]))
        return "\n".join(lines)

    def check_gone(self, view, venvs):
        for venv in venvs:
            if os.path.lexists(venv):
                raise BenchError("%s still exists after rm" % venv)
        for rel in self.m["samples"][:4]:
            n = os.lstat(os.path.join(view.cache, rel)).st_nlink
            if n != 1:
                raise BenchError("%s: nlink %d after rm, expected 1" % (rel, n))

    # -- the measured actions

    @staticmethod
    def walk_stat(root):
        """lstat every entry below root: (files, dirs, bytes)."""
        nfiles = ndirs = nbytes = 0
        stack = [root]
        lstat = os.lstat
        while stack:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    st = lstat(e.path)
                    if st.st_mode & 0o170000 == 0o040000:
                        ndirs += 1
                        stack.append(e.path)
                    else:
                        nfiles += 1
                        nbytes += st.st_size
        return nfiles, ndirs, nbytes

    @staticmethod
    def walk_read(root):
        """open/read/close every file below root: (files, dirs, bytes read)."""
        buf = [bytearray(1 << 20)]
        nfiles = ndirs = nbytes = 0
        stack = [root]
        while stack:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        ndirs += 1
                        stack.append(e.path)
                        continue
                    nfiles += 1
                    fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        while True:
                            n = os.readv(fd, buf)
                            if n == 0:
                                break
                            nbytes += n
                    finally:
                        os.close(fd)
        return nfiles, ndirs, nbytes

    def warm(self, t, layout):
        """Same start for every target and repetition: empty kernel caches,
        then the source layer's metadata (and, for the shared layer, whose
        files copy-up may read, data) read back in.  Without the drop, each
        cp -al/rm -rf cycle on ext4 leaves the next link slower (here 0.5 s
        -> 1.7 s natively over 8 cycles), so the order of targets would
        decide their times."""
        drop_caches(3)
        if layout == "link":
            self.walk_stat(t.path("upper", "cache"))
        else:
            self.walk_read(os.path.join(self.gen_seed, "cache"))

    def timed(self, target, op, fn, *args):
        os.sync()                       # start every measurement with no dirty data
        if op == "readcold":
            drop_caches(3)
        pid = target.proc.pid if target.proc else None
        c0 = cpu_seconds(pid) if pid else None
        t0 = time.perf_counter()
        out = fn(*args)
        dt = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - c0 if pid else None
        self.times[target.label].setdefault(op, []).append(dt)
        if cpu is not None:
            self.cpu[target.label].setdefault(op, []).append(cpu)
        log("  %-22s %-9s %8.3f s%s" % (target.label, op, dt,
                                        "" if cpu is None else ", daemon CPU %.3f s" % cpu))
        return out

    def import_modules(self, venv):
        out = run([sys.executable, "-I", "-S", "-B",
                   os.path.join(self.gen_root, "import_modules.py"), venv,
                   os.path.join(self.gen_root, "imports.txt")])
        n = int(out.split()[-1])
        if n != self.m["import_modules"]:
            raise BenchError("import loaded %d modules, expected %d" % (n, self.m["import_modules"]))

    # -- phases: each mounts fresh and unmounts

    def phase_link(self, t):
        ops = [op for op in ALL_OPS if op in LINK_PHASE_OPS and op in self.ops]
        view = t.mount("link")
        venv = view.venv()
        self.warm(t, "link")
        cp = ["cp", "-al", view.cache, venv]
        if "link" in ops:
            self.timed(t, "link", run, cp)
        else:
            run(cp)
        self.check_links(view, [venv], 2)
        if "stat" in ops:
            self.check_counts("stat " + venv, self.timed(t, "stat", self.walk_stat, venv))
        else:
            self.check_counts("stat " + venv, self.walk_stat(venv))
        if "readcold" in ops:
            self.check_counts("readcold " + venv, self.timed(t, "readcold", self.walk_read, venv))
        if "readwarm" in ops:
            if "readcold" not in ops:
                self.walk_read(venv)
            self.check_counts("readwarm " + venv, self.timed(t, "readwarm", self.walk_read, venv))
        if "import" in ops:
            self.timed(t, "import", self.import_modules, venv)
        rm = ["rm", "-rf", venv]
        try:
            if "rm" in ops:
                self.timed(t, "rm", run, rm)
            else:
                run(rm)
        except BenchError as e:
            raise BenchError("%s\n%s" % (e, self.leftovers(t, venv)))
        self.check_gone(view, [venv])
        t.unmount()

    def phase_seed(self, t):
        view = t.mount("seed")
        venv = view.venv()
        self.warm(t, "seed")
        self.timed(t, "seedlink", run, ["cp", "-al", view.cache, venv])
        self.check_links(view, [venv], 2)
        self.check_counts("seedlink " + venv, self.walk_stat(venv))
        if t.kind == "native":                     # links into the seed: undo them
            run(["rm", "-rf", venv])
        t.unmount()
        for d in ("seed-upper", "seed-work"):
            shutil.rmtree(t.path(d))

    def phase_par(self, t, n):
        view = t.mount("link")
        venvs = [view.venv(i) for i in range(n)]
        self.warm(t, "link")

        def installers():
            procs = [subprocess.Popen(["cp", "-al", view.cache, v], stderr=subprocess.PIPE)
                     for v in venvs]
            errs = [(p.args, p.communicate(timeout=TIMEOUT)[1], p.returncode) for p in procs]
            for args, err, rc in errs:
                if rc != 0:
                    raise BenchError("failed (exit %d): %s\n%s" % (rc, shlex.join(args),
                                                                   err.decode(errors="replace")))
        self.timed(t, "par%d" % n, installers)
        self.check_links(view, venvs, n + 1)
        rms = [subprocess.Popen(["rm", "-rf", v]) for v in venvs]
        if any(p.wait(timeout=TIMEOUT) != 0 for p in rms):
            raise BenchError("rm of parallel venvs failed in %s" % t.label)
        self.check_gone(view, venvs)
        t.unmount()

    def phase_uv(self, t, op):
        """uv pip install of the uv set from a warm cache into a new venv:
        the cache in the local layer (uv) or only in the shared one
        (uvseed; native and copy have no layers: the same install)."""
        layered = t.kind not in ("native", "copy")
        seed = op == "uvseed" and layered
        view = t.mount("seed" if seed else "link", seed=self.uv.seed if seed else None)
        venv = view.venv()
        cache = view.uvcache
        if os.path.lexists(venv):
            shutil.rmtree(venv)
        self.uv.venv(venv, cache)
        drop_caches(3)
        self.walk_stat(os.path.join(self.uv.seed if seed else t.path("upper"), "uvcache"))
        out = self.timed(t, op, self.uv.install, venv, cache)
        self.uv.check(venv, out, copied=t.kind == "copy")
        run(["rm", "-rf", venv])
        t.unmount()
        if seed:
            for d in ("seed-upper", "seed-work"):
                shutil.rmtree(t.path(d))

    def phase_mem(self, t):
        view = t.mount("link")
        pid = t.proc.pid
        time.sleep(0.5)
        row = self.mem[t.label] = {"idle": rss_kib(pid)}
        venv = view.venv()
        run(["cp", "-al", view.cache, venv])
        self.check_links(view, [venv], 2)
        row["installed"] = rss_kib(pid)
        run(["rm", "-rf", venv])
        self.check_gone(view, [venv])
        row["removed"] = rss_kib(pid)
        drop_caches(2)                  # kernel forgets inodes: FORGET to the daemon
        time.sleep(2)
        row["forgotten"] = rss_kib(pid)
        log("  %-22s mem       %s" % (t.label, ", ".join("%s %.1f MiB" % (k, v / 1024)
                                                         for k, v in row.items())))
        t.unmount()

    # -- FUSE request counts (--count-requests)

    def count_requests(self):
        """Mount each FUSE target with -d; count the requests of each operation."""
        out = []
        for t in [t for t in self.targets if t.fuse]:
            log("counting requests of %s" % t.label)
            counts = {}
            wakeups = {}

            def measure(op, fn, *args):
                time.sleep(0.3)                 # let FORGETs of the last op arrive
                start = os.path.getsize(t.daemon_log)
                sw = context_switches(t.proc.pid)
                fn(*args)
                sw = context_switches(t.proc.pid) - sw
                time.sleep(0.3)
                with open(t.daemon_log, "rb") as f:
                    f.seek(start)
                    text = f.read().decode(errors="replace")
                c = counts[op] = {}
                for name in re.findall(r"opcode: (\w+)", text):
                    c[name] = c.get(name, 0) + 1
                wakeups[op] = sw
                log("  %-22s %-9s %d requests" % (t.label, op, sum(c.values())))

            view = t.mount("link", extra_flags=["-d"])
            venv = view.venv()
            measure("link", run, ["cp", "-al", view.cache, venv])
            self.check_links(view, [venv], 2)
            measure("stat", self.walk_stat, venv)
            measure("readcold", lambda: (drop_caches(3), self.walk_read(venv)))
            measure("readwarm", self.walk_read, venv)
            measure("import", self.import_modules, venv)
            measure("rm", run, ["rm", "-rf", venv])
            t.unmount()
            if t.runs("seedlink"):
                view = t.mount("seed", extra_flags=["-d"])
                measure("seedlink", run, ["cp", "-al", view.cache, view.venv()])
                self.check_links(view, [view.venv()], 2)
                t.unmount()

            opcodes = sorted({k for c in counts.values() for k in c},
                             key=lambda k: -sum(c.get(k, 0) for c in counts.values()))
            header = ["request"] + list(counts)
            rows = [[k] + [counts[op].get(k, 0) or "" for op in counts] for k in opcodes]
            rows.append(["**total**"] + [sum(c.values()) for c in counts.values()])
            rows.append(["**per file**"] + ["%.2f" % (sum(c.values()) / self.m["files"])
                                            for c in counts.values()])
            rows.append(["**daemon sleeps** (voluntary context switches, with -d)"]
                        + [wakeups[op] for op in counts])
            out.append("FUSE requests per operation, %s (%d files, %d dirs):\n" % (
                t.label, self.m["files"], self.m["dirs"]))
            out.append(markdown(header, rows) + "\n")
        return "\n".join(out)

    # -- the whole run

    def check_space(self):
        st = os.statvfs(self.rundir)
        need = self.m["bytes"] * (2 * len(self.targets) + 1)
        if self.uv:
            need += self.uv.m["bytes"] * (len(self.targets) + 2)
        if st.f_bavail * st.f_frsize < need:
            raise BenchError("need %d MB free in %s" % (need >> 20, self.rundir))

    def run(self):
        m = self.m
        log("cache: %d files, %d dirs, %.0f MB, %d packages, %d modules imported; %s" % (
            m["files"], m["dirs"], m["bytes"] / 1e6, m["packages"], m["import_modules"],
            self.gen_root))
        log("targets: %s; reps %d (parallel %d); ops: %s" % (
            " ".join(t.label for t in self.targets), self.reps, self.par_reps,
            " ".join(self.ops)))
        self.check_space()
        self.load = [os.getloadavg()[0]]
        for t in self.targets:
            t.prepare(self.uv)
        pars = sorted(int(op[3:]) for op in self.ops if op.startswith("par"))
        n = len(self.targets)
        for rep in range(self.reps):
            log("repetition %d/%d" % (rep + 1, self.reps))
            order = self.targets[rep % n:] + self.targets[:rep % n]
            for t in order:
                if LINK_PHASE_OPS & set(self.ops) and t.runs("link"):
                    self.phase_link(t)
                if "seedlink" in self.ops and t.runs("seedlink"):
                    self.phase_seed(t)
                for op in uvbench.UV_OPS:
                    if op in self.ops and t.runs(op):
                        self.phase_uv(t, op)
            if rep < self.par_reps:
                for k in pars:
                    for t in order:
                        if t.kind != "copy":
                            self.phase_par(t, k)
        if "mem" in self.ops:
            for t in self.targets:
                if t.fuse:
                    self.phase_mem(t)
        self.load.append(os.getloadavg()[0])
        log("load average (1 min) at start %.2f, at end %.2f" % tuple(self.load))

    # -- reporting

    def rows(self):
        return [op for op in ALL_OPS + sorted({o for o in self.ops if o.startswith("par")}
                                              - set(ALL_OPS), key=lambda o: int(o[3:]))
                if op in self.ops and op != "mem"]

    def tables(self):
        labels = [t.label for t in self.targets]
        med = {lab: {op: statistics.median(v) for op, v in self.times[lab].items()}
               for lab in labels}
        names = {"par2": "link x2", "par8": "link x8", "uvseed": "uv, cache shared"}

        def opname(op):
            return names.get(op, "link x%s" % op[3:] if op.startswith("par") else op)
        out = []
        out.append("Median of %d repetitions (parallel: %d), seconds:\n" % (self.reps, self.par_reps))
        out.append(markdown(["operation"] + labels,
                            [[opname(op)] + ["%.3f" % med[lab][op] if op in med[lab] else "-"
                                             for lab in labels] for op in self.rows()]))
        cpu_labels = [lab for lab in labels if self.cpu[lab]]
        if cpu_labels:
            cmed = {lab: {op: statistics.median(v) for op, v in self.cpu[lab].items()}
                    for lab in cpu_labels}
            out.append("\nDaemon CPU time (user + system, all threads), median, seconds "
                       "(next to the wall time above):\n")
            out.append(markdown(["operation"] + cpu_labels,
                                [[opname(op)] + ["%.3f" % cmed[lab][op] if op in cmed[lab] else "-"
                                                 for lab in cpu_labels] for op in self.rows()]))
        if "native" in labels:
            out.append("\nRatio to native (lower is better):\n")
            base = med["native"]
            out.append(markdown(["operation"] + labels,
                                [[opname(op)] + ["%.2f" % (med[lab][op] / base[op])
                                                 if op in med[lab] and base.get(op) else "-"
                                                 for lab in labels] for op in self.rows()]))
        if self.mem:
            mlabels = [lab for lab in labels if lab in self.mem]
            out.append("\nDaemon RSS (VmRSS, MiB), %d-file install:\n" % self.m["files"])
            out.append(markdown(["state"] + mlabels,
                                [[name] + ["%.1f" % (self.mem[lab][key] / 1024) for lab in mlabels]
                                 for key, name in MEM_ROWS]))
        return "\n".join(out) + "\n"

    def machine(self):
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        try:
            fstype = " ".join(run(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS",
                                   "-T", self.base]).split())
        except (BenchError, OSError):
            fstype = run(["stat", "-f", "-c", "%T", self.base]).strip()
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
        return ["nproc %d, %s, %.0f GiB RAM" % (os.cpu_count(), cpu, mem),
                "kernel %s" % platform.release(),
                "cpuidle %s" % cpuidle(),
                "%s: %s" % (self.base, fstype),
                "load average at start/end %.2f/%.2f" % tuple(self.load)]

    def results_md(self, command, tables):
        m = self.m
        lines = ["# scratchfs benchmark results", "",
                 "Produced by `tests/bench/run.sh` (see README.md for what each row measures).", "",
                 "- command: `%s`" % command,
                 "- date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                 "- machine: " + "; ".join(self.machine()),
                 "- cache: %d files, %d dirs, %.0f MB, %d packages; import loads %d modules" % (
                     m["files"], m["dirs"], m["bytes"] / 1e6, m["packages"], m["import_modules"])]
        if self.uv:
            lines.append("- uv rows: %s, `uv pip install --no-deps --offline` of %d wheels "
                         "(tests/bench/uv-wheels.txt), %d files, %.0f MB installed" % (
                             self.uv.version(), self.uv.m["wheels"], self.uv.m["files"],
                             self.uv.m["bytes"] / 1e6))
        for t in self.targets:
            lines.append("- %s: %s%s" % (t.label, t.version(),
                                         "; args " + shlex.join(t.flags + ["-o", ",".join(t.opts)])
                                         if t.flags or t.opts else ""))
        return "\n".join(lines) + "\n\n" + tables


def markdown(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def fmt(r):
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2)
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(header), sep] + [fmt(r) for r in rows])


def command_line(argv):
    keys = sorted(k for k in os.environ if k.startswith("BENCH_") and k not in
                  ("BENCH_RUNDIR", "BENCH_WRITE_RESULTS", "BENCH_IN_NAMESPACE"))
    env = ["%s=%s" % (k, shlex.quote(os.environ[k])) for k in keys]
    if "SCRATCHFS_BIN" in os.environ:
        env.append("SCRATCHFS_BIN=" + shlex.quote(os.environ["SCRATCHFS_BIN"]))
    return " ".join(env + ["bash tests/bench/run.sh"] + [shlex.quote(a) for a in argv])


def main(argv):
    write = "--write-results" in argv or os.environ.get("BENCH_WRITE_RESULTS") == "1"
    count = "--count-requests" in argv
    unknown = [a for a in argv if a not in ("--write-results", "--count-requests")]
    if unknown or (write and count):
        print("usage: run.sh [--write-results | --count-requests]   (settings: BENCH_* variables, "
              "see tests/bench/README.md)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench: must run as root (mount -t overlay, drop_caches)", file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        b = Bench()
        if write:
            fake = [t for t in b.targets if t.kind == "scratchfs"
                    and os.path.basename(os.path.realpath(t.binary)) != "scratchfs"]
            if fake or not any(t.kind == "scratchfs" for t in b.targets):
                raise BenchError("--write-results needs a scratchfs target run with the "
                                 "real scratchfs binary (SCRATCHFS_BIN)")
        if count:
            for t in b.targets:
                t.prepare(b.uv)
            print(b.count_requests(), end="")
            return 0
        t0 = time.monotonic()
        b.run()
        tables = b.tables()
        log("done in %.0f s" % (time.monotonic() - t0))
        print(tables, end="")
        raw = os.path.join(b.base, "last-results.json")
        with open(raw + ".tmp", "w") as f:
            json.dump({"command": command_line(argv), "load": b.load, "times": b.times,
                       "daemon_cpu": b.cpu,
                       "mem_kib": b.mem, "manifest": b.m}, f, indent=1)
        os.rename(raw + ".tmp", raw)
        log("raw times: %s" % raw)
        if write:
            path = os.path.join(HERE, "RESULTS.md")
            with open(path, "w" if not os.path.exists(path) else "r+") as f:
                # hand-written analysis below the marker survives a rewrite
                old = f.read() if f.mode == "r+" else ""
                kept = old[old.find(NOTES_MARKER):] if NOTES_MARKER in old else ""
                f.seek(0)
                f.truncate()
                f.write(b.results_md(command_line(argv), tables))
                if kept:
                    f.write("\n" + kept)
            log("wrote %s" % path)
        return 0
    except BenchError as e:
        log("FAILED: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        cleanup_mounts()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
