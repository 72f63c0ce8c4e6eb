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
for tool in "$python" cp rm mount umount fusermount3 unshare flock; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 2; }
done

# Work in a private mount namespace: our mounts are invisible to other
# processes, and a test that unshares its own namespace meanwhile cannot keep
# a copy of them (and so their daemons) alive after we unmount.  The kernel
# drops the namespace's overlay mounts when its last process exits; FUSE
# daemons get SIGTERM when the driver dies and unmount themselves.
if [ -z "${BENCH_IN_NAMESPACE:-}" ]; then
	export BENCH_IN_NAMESPACE=1
	exec unshare --mount --propagation private bash "$0" "$@"
fi

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
# One run at a time: each drops the kernel caches under the other's feet.
exec 9>"$base/lock"
if ! flock -n 9; then
	echo "run.sh: another benchmark is running; waiting for it" >&2
	flock 9
fi

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

rc=0
cleanup() {
	unmount_all "$rundir"
	if [ "$rc" != 0 ] && compgen -G "$rundir/*/daemon.log" >/dev/null; then
		local logs
		logs=$base/logs-$(date +%Y%m%d-%H%M%S)-$$
		mkdir -p "$logs"
		for f in "$rundir"/*/daemon.log; do
			cp "$f" "$logs/$(basename "$(dirname "$f")").log"
		done
		echo "run.sh: daemon logs kept in $logs" >&2
	fi
	if [ -n "$(mounts_under "$rundir")" ]; then
		echo "run.sh: could not unmount everything under $rundir; not removing it" >&2
		return
	fi
	rm -rf --one-file-system "$rundir"
}
trap cleanup EXIT
trap 'rc=130; exit 130' INT
trap 'rc=143; exit 143' TERM HUP

BENCH_RUNDIR=$rundir "$python" "$here/bench.py" "$@" || rc=$?
exit "$rc"
