#!/bin/bash
# run.sh OUT SRCDIR SECONDS - `make fuzz`: run each libFuzzer target for
# SECONDS, one after the other at nice 19 (the machines are shared), on a
# working corpus in OUT/corpus/NAME grown from the seeds in
# SRCDIR/tests/fuzz/corpus/NAME.  Prints executions, edges covered and,
# when llvm-profdata and llvm-cov are installed, the line coverage of
# src/options.c and src/config_file.c reached by the final corpus.
# A crash, leak or sanitizer report leaves the input in OUT/artifacts and
# fails the run: turn it into a test in tests/unit/ (see README.md).
set -uo pipefail

out=$1 src=$2 secs=$3
status=0
mkdir -p "$out/artifacts"
for name in options config_file; do
	corpus=$out/corpus/$name
	log=$out/$name.log
	mkdir -p "$corpus"
	echo "fuzz_$name: ${secs}s, log in $log"
	if ! nice -n 19 "$out/fuzz_$name" -max_total_time="$secs" \
		-dict="$src/tests/fuzz/$name.dict" \
		-artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 \
		"$corpus" "$src/tests/fuzz/corpus/$name" >"$log" 2>&1; then
		status=1
		echo "fuzz_$name: FAILED (see $log and $out/artifacts/)"
		grep -E '^(==[0-9]+==ERROR|SUMMARY)' "$log" | head -5
	fi
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
	grep -E '^#[0-9]+' "$log" | tail -1 | sed 's/^/last status: /'
	if command -v llvm-profdata >/dev/null && command -v llvm-cov >/dev/null; then
		rm -f "$out/$name.profraw"
		LLVM_PROFILE_FILE=$out/$name.profraw nice -n 19 "$out/cov_$name" \
			-runs=0 "$corpus" "$src/tests/fuzz/corpus/$name" >/dev/null 2>&1
		llvm-profdata merge -o "$out/$name.profdata" "$out/$name.profraw" &&
			llvm-cov report "$out/cov_$name" -instr-profile="$out/$name.profdata" \
				"$src/src/options.c" "$src/src/config_file.c"
	fi
done
exit $status
