#!/bin/bash
# run.sh - one fuzz target as a test (TAP):
#   run.sh libfuzzer BIN NAME SRCDIR SECONDS ARTIFACTS
#     1  libFuzzer for SECONDS (MOAT_FUZZ_SECONDS overrides) from the
#        committed corpus (tests/fuzz/corpus/NAME, read only: new units go
#        to a temporary directory) with the dictionary dict/NAME.dict if any;
#        a crash is saved as ARTIFACTS/NAME-crash-... and fails the case
#     2  every committed regression input (regress/NAME) and corpus input,
#        once each
#   run.sh replay BIN NAME SRCDIR
#     1  the corpus and the regression inputs through driver.c (gcc build)
# The "# stats" line gives executions, edges covered (cov) and features (ft).
set -uo pipefail
mode=$1 bin=$2 name=$3 src=$4
corpus=$src/corpus/$name
regress=$src/regress/$name

if [ "$mode" = replay ]; then
	echo "1..1"
	if out=$("$bin" "$corpus" "$regress" 2>&1); then
		# what the code under test logged stays a TAP comment
		echo "$out" | sed '$d; s/^/# /'
		echo "ok 1 - $name: $(echo "$out" | tail -1)"
	else
		echo "$out" | sed 's/^/# /'
		echo "not ok 1 - $name: corpus or regression input crashed"
	fi
	exit 0
fi

secs=${MOAT_FUZZ_SECONDS:-$5}
# undefined behaviour is a finding like a crash
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1
art=$6
mkdir -p "$art"
tmp=$(mktemp -d "/tmp/moat-fuzz-$name.XXXXXX")
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
dict=()
[ -f "$src/dict/$name.dict" ] && dict=(-dict="$src/dict/$name.dict")
echo "1..2"
seed=()
[ -d "$corpus" ] && seed=("$corpus")
"$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$art/$name-" "${dict[@]}" "$tmp" "${seed[@]}" >"$tmp.log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp.log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$tmp.log" | tail -1 | cut -d' ' -f2)
ft=$(grep -o 'ft: [0-9]*' "$tmp.log" | tail -1 | cut -d' ' -f2)
echo "# stats target=$name seconds=$secs execs=${execs:-0} cov=${cov:-0} ft=${ft:-0} new_units=$(ls "$tmp" | wc -l)"
if [ $rc -eq 0 ]; then
	echo "ok 1 - $name: ${execs:-0} executions in ${secs}s without a crash or sanitizer report"
else
	grep -E 'ERROR|SUMMARY|Test unit written|^ *#[0-9]+ ' "$tmp.log" | tail -30 | sed 's/^/# /'
	echo "not ok 1 - $name: libFuzzer exit $rc (crash input in $art; copy it to tests/fuzz/regress/$name/)"
fi
rm -f "$tmp.log"
# -runs=0: load (run) every input of the directories, fuzz nothing
dirs=("$tmp")
for d in "$regress" "$corpus"; do [ -d "$d" ] && dirs+=("$d"); done
if out=$("$bin" -runs=0 -timeout=10 "${dirs[@]}" 2>&1); then
	echo "ok 2 - $name: regression and corpus inputs replayed"
else
	echo "$out" | grep -E 'ERROR|SUMMARY|Running:' | tail -20 | sed 's/^/# /'
	echo "not ok 2 - $name: a regression or corpus input crashed"
fi
