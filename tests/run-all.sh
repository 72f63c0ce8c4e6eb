#!/bin/bash
# run-all.sh - every test, from a fresh Debian 12 machine:
#   installs the missing packages, builds with sanitizers, runs `make check`
#   (unit tests, and the integration tests, which mount real filesystems and
#   need root and /dev/fuse), then `make distcheck` unless
#   SCRATCHFS_DISTCHECK=0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		echo "run-all.sh: need root (or sudo) to run: $*" >&2
		exit 1
	fi
}

step "checking packages"
packages=(libfuse3-dev fuse3 libglib2.0-dev libcmocka-dev autoconf automake
	pkg-config make gcc clang attr fuse-overlayfs git python3 python3-venv
	nodejs npm)
# Installed, or provided by an installed package (NodeSource's nodejs
# provides npm, for one).
provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
	sed -n 's/^install ok installed|//p' | tr ',' '\n' |
	sed 's/^ *//; s/ .*//' | sort -u)
installed() {
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed' ||
		grep -qx -- "$1" <<<"$provided"
}
missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "installing: ${missing[*]}"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
else
	echo "all present"
fi

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
