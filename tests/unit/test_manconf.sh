#!/bin/bash
# test_manconf - docs/moat.conf.5.scd is what docs/conf2scd.py makes of
# docs/configuration.md (the reference and the man page cannot drift apart:
# an edit of one without regenerating the other fails here).
root=$(cd "$(dirname "$0")/../.." && pwd)
echo "TAP version 13"
echo "1..1"
if out=$(/usr/bin/python3 "$root/docs/conf2scd.py") &&
	d=$(diff <(printf '%s\n' "$out") "$root/docs/moat.conf.5.scd"); then
	echo "ok 1 - moat.conf.5.scd matches docs/conf2scd.py output"
else
	echo "not ok 1 - moat.conf.5.scd is stale: run docs/conf2scd.py > docs/moat.conf.5.scd"
	printf '%s\n' "$d" | head -20 | sed 's/^/# /'
fi
