#!/bin/bash
# run.sh [TEST.py...] - build scratchfs with clang -fsanitize=thread in a
# build directory of its own (a copy of the committed tree, so the
# worktree's own build is untouched) and run integration tests against it
# (default: test_stress.py), with G_SLICE=always-malloc so that glib's slab
# allocator does not hide who owns memory.  TSan reports land in $OUT (default
# /var/tmp/scratchfs-tsan/reports); the script prints their summary lines
# and exits 1 if there are any.
#   SFS_TSAN_DIR   where to build (default /var/tmp/scratchfs-tsan)
#   SFS_TSAN_REV   the commit to build (default HEAD)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${SFS_TSAN_DIR:-/var/tmp/scratchfs-tsan}
out=${OUT:-$dir/reports}
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_stress.py)

rm -rf "$dir/tree" "$out"
mkdir -p "$dir/tree" "$out"
git -C "$src" archive "${SFS_TSAN_REV:-HEAD}" | tar -x -C "$dir/tree"
# The TSan helpers of this tree, also for an older SFS_TSAN_REV.
mkdir -p "$dir/tree/tests/tsan"
cp "$src/tests/tsan/glib_mutex_tsan.c" "$src/tests/tsan/suppressions.txt" \
	"$dir/tree/tests/tsan/"
cd "$dir/tree"
autoreconf -fi >"$dir/build.log" 2>&1
./configure CC=clang CFLAGS="-fsanitize=thread -g -O1" \
	LDFLAGS="-fsanitize=thread" >>"$dir/build.log" 2>&1
clang -fsanitize=thread -g -O1 $(pkg-config --cflags glib-2.0) \
	-c tests/tsan/glib_mutex_tsan.c -o glib_mutex_tsan.o
make -j2 src/scratchfs LIBS="$PWD/glib_mutex_tsan.o -ldl" >>"$dir/build.log" 2>&1

status=0
for t in "${tests[@]}"; do
	SCRATCHFS_BIN="$dir/tree/src/scratchfs" \
	TSAN_OPTIONS="exitcode=0 log_path=$out/report suppressions=$dir/tree/tests/tsan/suppressions.txt" \
	G_SLICE=always-malloc \
		python3 "tests/integration/$t" || status=1
done
reports=$(cat "$out"/report.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)
echo "ThreadSanitizer: $reports reports in $out"
cat "$out"/report.* 2>/dev/null | grep '^SUMMARY: ThreadSanitizer' | sort | uniq -c | sort -rn || true
[ "$reports" -eq 0 ] || status=1
exit $status
