"""The module map of src/ from the built objects, and its one rule: no
module's functions are called from a module it calls (src/README.md).

For each src/*.o, nm(1) tells which functions and data it defines and which
it uses; a use of a symbol another object defines is an edge "caller ->
callee".  Prints every module's callees, then the circles (strongly
connected groups of more than one module) with the symbols that close
them.  Exit 0 without circles, 1 with, 77 (skipped) without objects.

    python3 tests/module_map.py [BUILD/src]
"""

import collections
import glob
import os
import subprocess
import sys


def read_graph(objdir):
    defs, uses = {}, collections.defaultdict(set)
    for obj in sorted(glob.glob(os.path.join(objdir, "*.o"))):
        mod = os.path.basename(obj)[:-2]
        out = subprocess.run(["nm", obj], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDBR":
                defs[f[2]] = mod
            elif len(f) == 2 and f[0] == "U":
                uses[mod].add(f[1])
            uses.setdefault(mod, set())
    edges = {m: {defs[s] for s in syms if defs.get(s, m) != m}
             for m, syms in uses.items()}
    return defs, uses, edges


def circles(edges):
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    if len(sys.argv) > 1:
        objdir = sys.argv[1]
    else:
        objdir = os.path.dirname(os.environ.get("SCRATCHFS_BIN",
                                                "src/scratchfs"))
    defs, uses, edges = read_graph(objdir)
    if not edges:
        print(f"no objects in {objdir}: skipped")
        return 77
    for m in sorted(edges):
        print(f"{m:12} -> {' '.join(sorted(edges[m]))}")
    found = circles(edges)
    print("circles:", found if found else "none")
    for group in found:
        for a in group:
            for b in sorted(edges[a] & set(group)):
                syms = sorted(s for s in uses[a] if defs.get(s) == b)
                print(f"  {a} -> {b}: {' '.join(syms)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
