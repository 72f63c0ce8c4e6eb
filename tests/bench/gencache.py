#!/usr/bin/env python3
"""Generate the synthetic uv cache used by tests/bench.

The cache imitates what `uv pip install` of a scientific stack leaves in
site-packages: ~150 packages of very different sizes, nested subpackages,
mostly small .py files (with their __pycache__/*.pyc, as after
--compile-bytecode), some data files of 100 KB-2 MB, a few multi-MB .so
files and a .dist-info directory per package.  The Python code is real: every
package imports, so the import benchmark can load a few hundred modules.

Everything comes from one fixed seed, and all mtimes are pinned, so two
generations with the same parameters give the same bytes.  The result lives
in a directory whose name carries the generator version, the file count, the
seed and the interpreter's cache tag; a finished generation holds
manifest.json, and is reused as long as that file is there.

Layout of one generation:

    <root>/seed/cache/<pkg>/...   the cache; <root>/seed is the shared layer
    <root>/manifest.json          counts, sizes, sample files, import list
    <root>/imports.txt            module names the import benchmark loads

Usage: gencache.py [--files N] [--seed S] [--base DIR]   (prints <root>)
"""

import argparse
import json
import math
import os
import py_compile
import random
import shutil
import subprocess
import sys
import sysconfig

GEN_VERSION = 1
DEFAULT_SEED = 20250611
DEFAULT_FILES = 20000
DEFAULT_BASE = "/var/tmp/scratchfs-bench"
MTIME = 1700000000          # every file and directory gets this mtime
DIST_INFO_FILES = ("METADATA", "RECORD", "WHEEL", "INSTALLER", "top_level.txt")

WORDS = ("array core linalg sparse fft signal stats io ndimage optimize "
         "interp spatial special cluster odr integrate frame series index "
         "plot axis figure patch text image color scale tick grid layout "
         "model fit loss kernel tensor graph node edge path cache store "
         "parse token lexer format utils compat config base types errors").split()


def import_script():
    """Source of the program the import benchmark runs (argv: root list)."""
    return (
        "import sys\n"
        "root, names = sys.argv[1], open(sys.argv[2]).read().split()\n"
        "sys.path.insert(0, root)\n"
        "before = set(sys.modules)\n"
        "for n in names:\n"
        "    __import__(n)\n"
        "new = [m for m in sys.modules if m not in before]\n"
        "bad = [m for m in new if not (getattr(sys.modules[m], '__file__', '')"
        " or '').startswith(root)]\n"
        "if bad:\n"
        "    sys.exit('modules not from %s: %s' % (root, bad[:5]))\n"
        "print(len(new))\n")


# --------------------------------------------------------------------------
# planning: decide every directory and file, with kind and size, up front


def lognormal_size(rng, median, sigma, lo, hi):
    return int(min(hi, max(lo, rng.lognormvariate(math.log(median), sigma))))


def word(rng):
    return rng.choice(WORDS)


def split_budget(rng, total, parts, minimum):
    """Split `total` files over `parts` packages, heavy-tailed like real venvs."""
    weights = [rng.paretovariate(1.3) for _ in range(parts)]
    scale = (total - parts * minimum) / sum(weights)
    sizes = [minimum + int(w * scale) for w in weights]
    i = 0
    while sum(sizes) < total:            # hand out the rounding remainder
        sizes[i % parts] += 1
        i += 1
    return sizes


class Plan:
    def __init__(self):
        self.dirs = []          # relative paths, parents first
        self.files = []         # (relpath, kind, size or module info)
        self.imports = []       # module names for the import benchmark


def plan_package(rng, plan, name, budget, n_so):
    """Plan one package (and its dist-info) holding exactly `budget` files."""
    dist = "%s-%d.%d.%d.dist-info" % (name, rng.randint(0, 3),
                                      rng.randint(0, 30), rng.randint(0, 9))
    plan.dirs.append(dist)
    for f in DIST_INFO_FILES:
        size = {"RECORD": 90 * budget}.get(f, lognormal_size(rng, 400, 1.2, 10, 20000))
        plan.files.append((dist + "/" + f, "text", size))
    rest = budget - len(DIST_INFO_FILES)

    n_big = max(0, round(rest * 0.02 + rng.uniform(-0.5, 0.5)))
    n_so = min(n_so, max(0, rest - n_big - 2))
    n_small = max(0, round(rest * 0.08))
    n_py = (rest - n_big - n_so - n_small) // 2      # each .py has a .pyc
    if n_py < 1:
        n_py, n_small, n_big, n_so = 1, 0, 0, 0
    n_small = rest - n_big - n_so - 2 * n_py          # absorbs the remainder
    assert n_small >= 0, (name, budget)

    # Package tree: the top package plus subpackages, nested up to depth 3,
    # each a directory with __init__.py.  About ten modules per package dir.
    n_sub = min(n_py - 1, (n_py - 1) // 10)
    pkgs = [(name, 1)]
    for i in range(n_sub):
        parent, depth = rng.choice([p for p in pkgs if p[1] < 3])
        sub = "tests" if i == n_sub - 1 and i > 2 else "%s_%d" % (word(rng), i)
        pkgs.append((parent + "/" + sub, depth + 1))
    modules = {p: [] for p, _ in pkgs}
    for i in range(n_py - len(pkgs)):
        modules[rng.choice(pkgs)[0]].append("_%s%d" % (word(rng), i) if rng.random() < 0.3
                                            else "%s%d" % (word(rng), i))

    for p, _ in pkgs:
        plan.dirs.append(p)
        plan.dirs.append(p + "/__pycache__")
        mods = modules[p]
        first = mods[0] if mods else None
        size = lognormal_size(rng, 1500, 1.0, 200, 20000)
        plan.files.append((p + "/__init__.py", "py", (size, first)))
        for m in mods:
            size = lognormal_size(rng, 3000, 1.0, 200, 20000)
            plan.files.append((p + "/" + m + ".py", "py", (size, None)))
    # Data files go to a data/ directory (not a package) of a random package.
    data_dirs = {}
    for i in range(n_big + n_small + n_so):
        where = rng.choice(pkgs)[0]
        if i < n_so:                            # extension modules, 1-8 MB
            ext = "_lib%s%d.cpython-311-x86_64-linux-gnu.so" % (word(rng), i)
            plan.files.append((where + "/" + ext, "bin",
                               lognormal_size(rng, 3 << 20, 0.5, 1 << 20, 8 << 20)))
            continue
        if where not in data_dirs:
            data_dirs[where] = where + "/data"
            plan.dirs.append(where + "/data")
        if i < n_so + n_big:                    # data files, 100 KB-2 MB
            plan.files.append((data_dirs[where] + "/%s%d.%s" % (word(rng), i,
                               rng.choice(("npz", "dat", "bin", "h5"))), "bin",
                               lognormal_size(rng, 300 << 10, 0.8, 100 << 10, 2 << 20)))
        else:                                   # small text: stubs, json, csv
            plan.files.append((data_dirs[where] + "/%s%d.%s" % (word(rng), i,
                               rng.choice(("pyi", "json", "txt", "csv"))), "text",
                               lognormal_size(rng, 2000, 1.2, 100, 20000)))

    plan.imports.append(name)
    return [p for p, _ in pkgs], modules


def make_plan(nfiles, seed):
    rng = random.Random(seed)
    npkg = max(3, round(nfiles / 133))
    budgets = split_budget(rng, nfiles, npkg, 14)
    n_so_total = max(2, nfiles // 1000)
    so_counts = [0] * npkg
    for _ in range(n_so_total):                 # .so files go to big packages
        so_counts[rng.choices(range(npkg), weights=budgets)[0]] += 1
    plan = Plan()
    for i, budget in enumerate(budgets):
        name = "%s%s_%03d" % (word(rng), word(rng), i)
        pkgs, modules = plan_package(rng, plan, name, budget, so_counts[i])
        # every other package: also import one module deep in a subpackage
        deep = [p for p in pkgs if p.count("/") >= 1 and modules[p]]
        if i % 2 == 0 and deep:
            p = rng.choice(deep)
            plan.imports.append(p.replace("/", ".") + "." + rng.choice(modules[p]))
    return plan


# --------------------------------------------------------------------------
# writing


def python_source(rng, modname, size, first_import):
    """Valid Python of about `size` bytes: defs, classes, constants, comments."""
    out = ['"""%s: synthetic module of the scratchfs benchmark."""' % modname, ""]
    if first_import:
        out += ["from . import %s" % first_import, ""]
    n = 0
    while sum(len(l) + 1 for l in out) < size * 0.6:
        k = rng.randint(0, 2)
        if k == 0:
            out += ["%s_%d = %r" % (word(rng).upper(), n,
                                    tuple(rng.randint(0, 999) for _ in range(rng.randint(1, 8)))), ""]
        elif k == 1:
            out += ["def %s_%d(x, y=%d):" % (word(rng), n, rng.randint(0, 99)),
                    '    """Compute the %s of x and y."""' % word(rng),
                    "    z = x * %d + y" % rng.randint(1, 99),
                    "    for i in range(%d):" % rng.randint(1, 9),
                    "        z ^= i << %d" % rng.randint(0, 7),
                    "    return z", "", ""]
        else:
            out += ["class %s%d:" % (word(rng).capitalize(), n),
                    '    """A %s %s."""' % (word(rng), word(rng)),
                    "    scale = %d" % rng.randint(1, 99), "",
                    "    def __init__(self, value=0):",
                    "        self.value = value * self.scale", "",
                    "    def %s(self, other):" % word(rng),
                    "        return self.value + other", "", ""]
        n += 1
    text = "\n".join(out)
    while len(text) < size:                     # pad with comments
        text += "\n# " + " ".join(word(rng) for _ in range(rng.randint(4, 12)))
    return text + "\n"


def text_data(rng, size):
    parts, n = [], 0
    while n < size:
        line = " ".join(word(rng) for _ in range(rng.randint(3, 14))) + "\n"
        parts.append(line)
        n += len(line)
    return "".join(parts)[:size]


def generate(root, nfiles, seed):
    plan = make_plan(nfiles, seed)
    rng = random.Random(seed + 1)
    pool = random.Random(seed + 2).randbytes(16 << 20)
    cache = os.path.join(root, "seed", "cache")
    os.makedirs(cache)
    for d in plan.dirs:
        os.makedirs(os.path.join(cache, d), exist_ok=True)
    pyfiles = []
    for rel, kind, arg in plan.files:
        path = os.path.join(cache, rel)
        if kind == "py":
            size, first = arg
            data = python_source(rng, rel[:-3].replace("/", "."), size, first).encode()
            pyfiles.append(path)
        elif kind == "text":
            data = text_data(rng, arg).encode()
        else:
            off = rng.randrange(0, len(pool) - arg) if arg < len(pool) else 0
            data = pool[off:off + arg]
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (MTIME, MTIME))
    for path in pyfiles:                        # bytecode, as uv --compile-bytecode
        py_compile.compile(path, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)

    # Count what is really there, pin mtimes, pick sample files.
    files, ndirs, nbytes = [], 0, 0
    for dirpath, dirnames, filenames in os.walk(cache):
        dirnames.sort()
        ndirs += len(dirnames)
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            os.utime(p, (MTIME, MTIME))
            st = os.lstat(p)
            files.append((os.path.relpath(p, cache), st.st_size))
            nbytes += st.st_size
    for dirpath, dirnames, _ in os.walk(cache, topdown=False):
        for d in dirnames:
            os.utime(os.path.join(dirpath, d), (MTIME, MTIME))
    if len(files) != nfiles:
        raise SystemExit("gencache: planned %d files, wrote %d" % (nfiles, len(files)))
    srng = random.Random(seed + 3)
    samples = [files[0][0], files[-1][0], max(files, key=lambda f: f[1])[0]]
    samples += [f[0] for f in srng.sample(files, min(13, len(files)))]

    with open(os.path.join(root, "imports.txt"), "w") as f:
        f.write("\n".join(plan.imports) + "\n")
    # Run the import once here: proves the code imports and fixes the count.
    script = os.path.join(root, "import_modules.py")
    with open(script, "w") as f:
        f.write(import_script())
    out = subprocess.run([sys.executable, "-I", "-S", "-B", script, cache,
                          os.path.join(root, "imports.txt")],
                         check=True, capture_output=True, text=True).stdout
    manifest = {
        "generator_version": GEN_VERSION, "seed": seed, "files": len(files),
        "dirs": ndirs, "bytes": nbytes, "packages": sum(1 for d in plan.dirs
                                                        if "/" not in d and not d.endswith(".dist-info")),
        "py_files": len(pyfiles), "samples": sorted(set(samples)),
        "imports": len(plan.imports), "import_modules": int(out.split()[-1]),
        "python": sys.implementation.cache_tag,
    }
    with open(os.path.join(root, "manifest.json.tmp"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.rename(os.path.join(root, "manifest.json.tmp"), os.path.join(root, "manifest.json"))
    return manifest


def cache_root(base, nfiles, seed):
    return os.path.join(base, "gen-v%d-n%d-s%d-%s" % (GEN_VERSION, nfiles, seed,
                                                      sys.implementation.cache_tag))


def ensure(base=DEFAULT_BASE, nfiles=DEFAULT_FILES, seed=DEFAULT_SEED, log=None):
    """Return (root, manifest), generating the cache unless already complete."""
    root = cache_root(base, nfiles, seed)
    mpath = os.path.join(root, "manifest.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            return root, json.load(f)
    if os.path.exists(root):                    # an interrupted generation
        shutil.rmtree(root)
    os.makedirs(root)
    if log:
        log("generating %d-file cache in %s (once)" % (nfiles, root))
    try:
        return root, generate(root, nfiles, seed)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=DEFAULT_FILES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--base", default=DEFAULT_BASE)
    args = ap.parse_args()
    if args.files < 100:
        ap.error("--files must be at least 100")
    root, m = ensure(args.base, args.files, args.seed,
                     log=lambda s: print(s, file=sys.stderr))
    print(root)
    print("%(files)d files, %(dirs)d dirs, %(bytes)d bytes, %(packages)d packages, "
          "%(import_modules)d modules imported" % m, file=sys.stderr)


if __name__ == "__main__":
    main()
