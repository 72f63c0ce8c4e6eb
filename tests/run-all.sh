#!/bin/bash
# run-all.sh - every test, from a fresh Debian 12 machine:
#   installs the missing packages, fetches the pinned uv release and the
#   wheelhouse of the real-uv tests (tests/integration/uv_env.py), builds
#   with sanitizers, runs `make check`
#   (unit tests, and the integration tests, which mount real filesystems and
#   need root and /dev/fuse), then `make distcheck` unless
#   SCRATCHFS_DISTCHECK=0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "checking packages"
bash contrib/install-deps.sh libfuse3-dev fuse3 libglib2.0-dev libcmocka-dev \
	autoconf automake pkg-config make gcc clang attr fuse-overlayfs git \
	python3 python3-venv python3-pip python3-hypothesis nodejs npm \
	sshfs openssh-server e2fsprogs

# Real uv (pinned) and the pinned wheelhouse test_uv_real.py installs from,
# downloaded once into SCRATCHFS_TEST_CACHE (/var/cache/scratchfs-tests).
step "uv and the test wheelhouse"
python3 tests/integration/uv_env.py

# Print the test-suite.log (which holds the log of every failed test) of
# each test run that failed, the distcheck build's included.
show_failures() {
	local log
	find . -name test-suite.log -print0 |
		while IFS= read -r -d '' log; do
			grep -Eq '^# (FAIL|ERROR|XPASS): +[1-9]' "$log" || continue
			printf '\n----- %s -----\n' "$log"
			cat "$log"
		done
}

step "building (sanitizers on)"
autoreconf -fi
./configure --enable-sanitizers
make -j2

step "make check"
if ! make check; then
	show_failures
	echo "run-all.sh: make check failed" >&2
	exit 1
fi

if [ "${SCRATCHFS_DISTCHECK:-1}" != 0 ]; then
	step "make distcheck"
	if ! make distcheck; then
		show_failures
		echo "run-all.sh: make distcheck failed" >&2
		exit 1
	fi
fi

step "all tests passed"
