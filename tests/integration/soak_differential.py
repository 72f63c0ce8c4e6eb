"""soak_differential.py - `make soak`: the differential test of
test_differential.py at length.  SOAK_WORKERS (4) processes, each with its
own pair of mounts (scratchfs and kernel overlayfs), run SOAK_OPS
(100,000) random operations between them, in episodes of SOAK_EPISODE
(500) operations that each start from fresh layers.  Workers alternate the
loop modes (multithread, -s).  A difference stops the worker's episode,
shrinks it to a minimal sequence, and prints that sequence and the seed.

    make soak                          (as root; takes minutes)
    SOAK_SEED=7 SOAK_OPS=20000 make soak

Exit status 0 when no worker found a difference, 1 otherwise."""

import multiprocessing
import os
import random
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
import difftest as dt  # noqa: E402

WORKERS = int(os.environ.get("SOAK_WORKERS", "4"))
OPS = int(os.environ.get("SOAK_OPS", "100000"))
EPISODE = int(os.environ.get("SOAK_EPISODE", "500"))
MODES = [(), ("-s",)]


def episode(rnd, nops, extra_args):
    """Run nops random operations on a fresh pair; return (ops run, None)
    or (ops run, (operations up to the failing one, differences))."""
    ops = []
    pair = dt.Pair(extra_args=extra_args)
    try:
        for _ in range(nops):
            op = dt.random_op(rnd)
            ops.append(op)
            d = pair.step(op)
            if d:
                return len(ops), (ops, d)
    finally:
        pair.close()
    return len(ops), None


def worker(index, seed, nops, out):
    # SIGTERM unmounts this worker's pair on the way out (finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        run_worker(index, seed, nops, out)
    except BaseException:  # noqa: BLE001 - the parent waits for a report
        out.put((index, 0, 0.0, "seed %d: worker error\n%s" % (seed, traceback.format_exc())))


def run_worker(index, seed, nops, out):
    rnd = random.Random(seed)
    extra = MODES[index % len(MODES)]
    done, t0 = 0, time.monotonic()
    while done < nops:
        n, failure = episode(rnd, min(EPISODE, nops - done), extra)
        done += n
        if failure:
            ops, d = failure
            minimal = dt.shrink(ops, extra_args=extra)
            out.put((index, done, time.monotonic() - t0,
                     "seed %d, loop %s: after %r\n  %s\nminimal sequence:\n%s" % (
                         seed, " ".join(extra) or "multithread", ops[-1], "\n  ".join(d),
                         dt.format_ops(minimal))))
            return
    out.put((index, done, time.monotonic() - t0, None))


def main():
    sfs.require_environment()
    sfs.enter_private_namespace()
    if not dt.kernel_overlay_available():
        print("FAIL: the kernel has no overlay filesystem")
        return 1
    os.environ.setdefault("SCRATCHFS_BIN", sfs.binary())
    base = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
    per = (OPS + WORKERS - 1) // WORKERS
    print("soak: %d operations in %d workers, %d each, episodes of %d, seeds %d..%d"
          % (per * WORKERS, WORKERS, per, EPISODE, base, base + WORKERS - 1), flush=True)
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(i, base + i, per, q))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    failed, total = 0, 0
    for _ in procs:
        i, done, secs, failure = q.get()
        total += done
        mode = " ".join(MODES[i % len(MODES)]) or "multithread"
        if failure:
            failed += 1
            print("worker %d (%s): DIFFERENCE after %d operations, %.0f s\n%s"
                  % (i, mode, done, secs, failure), flush=True)
        else:
            print("worker %d (%s): %d operations, no difference, %.0f s (%.1f ms/op)"
                  % (i, mode, done, secs, 1000 * secs / max(done, 1)), flush=True)
    for p in procs:
        p.join()
        if p.exitcode:
            failed += 1
            print("a worker exited with %d" % p.exitcode)
    print("soak: %d operations, %s" % (total, "%d worker(s) found differences" % failed
                                       if failed else "no differences"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
