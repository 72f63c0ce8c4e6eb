#!/bin/bash
# Entry point of `make bench`: see tests/bench/README.md.
#
# Runs bench.py with a run directory of its own under $BENCH_DIR, and
# whatever happens to bench.py (error, ^C, kill), unmounts everything left
# under that directory and removes it on the way out.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base=${BENCH_DIR:-/var/tmp/scratchfs-bench}
python=${PYTHON:-python3}

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: must run as root (mount -t overlay, drop_caches)" >&2
	exit 2
fi
for tool in "$python" cp rm mount umount fusermount3; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 2; }
done

# Mount points below directory $1, deepest first.
mounts_under() {
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

unmount_all() {
	local mp
	for mp in $(mounts_under "$1"); do
		echo "run.sh: unmounting leftover $mp" >&2
		fusermount3 -u "$mp" 2>/dev/null || umount "$mp" 2>/dev/null ||
			fusermount3 -uz "$mp" 2>/dev/null || umount -l "$mp" || true
	done
}

mkdir -p "$base"
# Run directories of earlier runs whose process is gone: remove if unmounted.
for d in "$base"/run-*; do
	[ -d "$d" ] || continue
	kill -0 "${d##*/run-}" 2>/dev/null && continue
	if [ -n "$(mounts_under "$d")" ]; then
		echo "run.sh: $d of a dead run still has mounts; leaving it" >&2
		continue
	fi
	rm -rf --one-file-system "$d"
done

rundir=$base/run-$$
mkdir "$rundir"

cleanup() {
	unmount_all "$rundir"
	if [ -n "$(mounts_under "$rundir")" ]; then
		echo "run.sh: could not unmount everything under $rundir; not removing it" >&2
		return
	fi
	rm -rf --one-file-system "$rundir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

rc=0
BENCH_RUNDIR=$rundir "$python" "$here/bench.py" "$@" || rc=$?
exit "$rc"
