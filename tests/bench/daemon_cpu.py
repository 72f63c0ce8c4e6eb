"""daemon_cpu.py - the CPU time two scratchfs builds spend serving the same
work, for changes whose cost is too small for wall-clock times on a loaded
machine (the daemon's user+system time moves far less with the load than
the time a command takes).

    unshare -m sh -c 'mount --make-rprivate / && \
        python3 tests/bench/daemon_cpu.py REPS BEFORE_BIN AFTER_BIN [CACHE]'
    (DAEMON_CPU_SHARED=1: the cache in the shared layer instead)

Per repetition (the order of the two builds alternates): a fresh mount
whose local layer holds a copy of CACHE (default: the cache make bench
generated), `cp -al cache venv` and `rm -rf venv` through it; prints the
median daemon CPU seconds of each step, and the wall times, per build.
"""

import glob
import os
import shutil
import statistics
import subprocess
import sys
import time

BASE = "/var/tmp/scratchfs-daemon-cpu"
# DAEMON_CPU_SHARED=1: the cache is in the shared layer, so every link
# first copies the file up (metadata only), as `seedlink` in make bench.
SHARED = os.environ.get("DAEMON_CPU_SHARED") == "1"


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def one(binary, cache, res):
    shutil.rmtree(BASE, ignore_errors=True)
    for d in ("lower", "upper", "work", "mnt"):
        os.makedirs(os.path.join(BASE, d))
    where = "lower" if SHARED else "upper"
    subprocess.run(["cp", "-a", cache, BASE + "/%s/cache" % where], check=True)
    mnt = BASE + "/mnt"
    p = subprocess.Popen([binary, "-f", "-o", "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work"
                          % (BASE, BASE, BASE), mnt], stderr=subprocess.DEVNULL)
    while not os.path.ismount(mnt):
        time.sleep(0.01)
    for step, cmd in (("link", ["cp", "-al", mnt + "/cache", mnt + "/venv"]),
                      ("rm", ["rm", "-rf", mnt + "/venv"])):
        c, t = cpu_seconds(p.pid), time.monotonic()
        subprocess.run(cmd, check=True)
        res["cpu " + step].append(cpu_seconds(p.pid) - c)
        res["wall " + step].append(time.monotonic() - t)
    subprocess.run(["fusermount3", "-u", mnt], check=True)
    p.wait()


def main():
    reps, before, after = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    caches = sys.argv[4:] or sorted(glob.glob("/var/tmp/scratchfs-bench/gen-*/seed/cache"))
    if not caches:
        sys.exit("no cache: give one, or run make bench once")
    builds = {"before": before, "after": after}
    res = {k: {} for k in builds}
    for r in res.values():
        for k in ("cpu link", "cpu rm", "wall link", "wall rm"):
            r[k] = []
    for rep in range(reps):
        for name in (["before", "after"] if rep % 2 == 0 else ["after", "before"]):
            one(builds[name], caches[0], res[name])
    shutil.rmtree(BASE, ignore_errors=True)
    print("cache %s, %d repetitions, medians:" % (caches[0], reps))
    for k in ("cpu link", "cpu rm", "wall link", "wall rm"):
        b, a = statistics.median(res["before"][k]), statistics.median(res["after"][k])
        print("  %-9s before %.3f s  after %.3f s  after/before %.2f" % (k, b, a, a / b))


if __name__ == "__main__":
    main()
