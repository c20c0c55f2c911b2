#!/bin/bash
# test_moat_scan.sh - moat-scan: --help/--version, check, skipped, scan
# verdicts and exit codes, a bad rules file reported with file:line.
set -u
bin=$1
rules=$2
. "$(dirname "$0")/../lab/lab.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tap_plan 11
"$bin" --help | grep -q '^usage: moat-scan' && "$bin" --version | grep -q '^moat-scan [0-9]' &&
	tap_ok "--help and --version" || tap_not_ok "--help and --version"
out=$("$bin" -r "$rules" check)
echo "$out" | grep -q '^rules [1-9]' && tap_ok "check counts the rules" || tap_not_ok "check: $out"
printf 'Subject: hi\n\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n' >"$tmp/spam"
printf 'Subject: hi\n\nlunch at noon\n' >"$tmp/ham"
out=$("$bin" -r "$rules" scan "$tmp/spam")
[ $? -eq 1 ] && echo "$out" | grep -q 'reject 550 5.7.1 .*(rule GTUBE)$' &&
	tap_ok "scan: GTUBE refused, exit 1" || tap_not_ok "scan spam: $out"
out=$("$bin" -r "$rules" scan "$tmp/ham")
[ $? -eq 0 ] && echo "$out" | grep -q 'accept X-Moat-Scan: score=0.0' &&
	tap_ok "scan: ham accepted with the header, exit 0" || tap_not_ok "scan ham: $out"
printf 'OK body score 1 /a/\nBAD body score 1 /(a)\\1/\n' >"$tmp/bad.rules"
out=$("$bin" -r "$tmp/bad.rules" check 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "$tmp/bad.rules:2: rule BAD: Back-references" &&
	tap_ok "bad rules: exit 2 with file:line, rule and Hyperscan's message" || tap_not_ok "bad: $out"
mkdir "$tmp/sa"
printf 'body __A /alpha/\nbody EV eval:foo()\nmeta M __A && EV\nscore M 2\nscore EV 1\n' >"$tmp/sa/50_x.cf"
out=$("$bin" -s "$tmp/sa" skipped)
echo "$out" | grep -q $'^50_x.cf:2\tEV\t\\[scored\\] eval' && echo "$out" | grep -q $'^50_x.cf:3\tM\t\\[scored\\] uses EV' &&
	tap_ok "skipped: file:line, name and reason" || tap_not_ok "skipped: $out"
out=$("$bin" -s "$tmp/sa" check)
# __A: read only by M, which is skipped: it cannot change a verdict
echo "$out" | grep -q '^sa_scored_imported 0 of 2' &&
	echo "$out" | grep -q '^rules_dead 1 (raw 0, header 0, body 1, ' &&
	tap_ok "check: SpamAssassin coverage, rules not run" || tap_not_ok "coverage: $out"
# metas over the hit bitmap: a sum compared with a constant, a nested meta,
# negation, and an operand that is not defined (0, as in SpamAssassin)
mkdir "$tmp/meta"
cat >"$tmp/meta/50_m.cf" <<'EOF'
body __A /alpha/
body __B /beta/
body __C /gamma/
meta TWO_OF (__A + __B + __C) > 1
meta __NEST __A && !__B
meta NESTED __NEST || __UNDEFINED
meta NONE_OF !(__A || __B || __C)
score TWO_OF 1
score NESTED 0.5
score NONE_OF 0.3
EOF
printf 'Subject: x\n\nalpha beta\n' >"$tmp/m1"
printf 'Subject: x\n\nalpha\n' >"$tmp/m2"
printf 'Subject: x\n\nnothing\n' >"$tmp/m3"
o1=$("$bin" -s "$tmp/meta" scan "$tmp/m1") o2=$("$bin" -s "$tmp/meta" scan "$tmp/m2")
o3=$("$bin" -s "$tmp/meta" scan "$tmp/m3")
echo "$o1" | grep -q 'score=1.0 .*rules=TWO_OF$' && echo "$o2" | grep -q 'score=0.5 .*rules=NESTED$' &&
	echo "$o3" | grep -q 'score=0.3 .*rules=NONE_OF$' &&
	tap_ok "metas: sum > 1, nested, negated, undefined operand" ||
	tap_not_ok "metas: $o1 / $o2 / $o3"
# a rule set with no Hyperscan database at all (eval rules only) scans
mkdir "$tmp/ev"
printf 'header MISSING_TO eval:check_for_missing_to_header()\nscore MISSING_TO 1.5\n' >"$tmp/ev/50_e.cf"
out=$("$bin" -s "$tmp/ev" scan "$tmp/ham" 2>&1)
[ $? -eq 0 ] && echo "$out" | grep -q 'score=1.5 .*rules=MISSING_TO$' &&
	tap_ok "eval rules only: scanned, not out of memory" || tap_not_ok "eval only: $out"
printf 'meta M1 !__X\nscore M1 1\nheader __X exists:X-Foo\n' >"$tmp/ev/50_e.cf"
out=$("$bin" -s "$tmp/ev" scan "$tmp/ham" 2>&1)
[ $? -eq 0 ] && echo "$out" | grep -q 'score=1.0 .*rules=M1$' &&
	tap_ok "exists and meta rules only: scanned" || tap_not_ok "exists+meta only: $out"
# a hostile meta nested past the parser's bound (700 parentheses, 300,000
# "!"): skipped with the reason, the rest of the set loads and scans
mkdir "$tmp/deep"
python3 -c '
import sys
d = sys.argv[1]
open(d + "/50_d.cf", "w").write("body __A /alpha/\nmeta PAREN " + "(" * 700 + "__A" + ")" * 700 +
    "\nscore PAREN 1\nmeta BANG " + "!" * 300000 + "__A\nscore BANG 1\nmeta OK __A\nscore OK 2\n")' "$tmp/deep"
sk=$("$bin" -s "$tmp/deep" skipped 2>&1)
out=$("$bin" -s "$tmp/deep" scan "$tmp/m1" 2>&1)
echo "$sk" | grep -q $'\tPAREN\t.*nesting too deep' && echo "$sk" | grep -q $'\tBANG\t.*nesting too deep' &&
	echo "$out" | grep -q 'score=2.0 .*rules=OK$' &&
	tap_ok "metas nested too deep: skipped with the reason, no crash" || tap_not_ok "deep metas: $sk / $out"
exit $((TAP_FAIL > 0))
