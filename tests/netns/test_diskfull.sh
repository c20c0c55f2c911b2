#!/bin/bash
# test_diskfull.sh - saved zone state when the disk is full: zstate_diskfull
# (the real writer and loader of sources/zstate.c) on a 256 KiB tmpfs mounted
# in a private mount namespace (unshare -m: the host's mounts never see it).
# Root only (mount).
set -u
build=${MOAT_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
dir=$(mktemp -d /tmp/moat-diskfull.XXXXXX)
trap 'rmdir "$dir" 2>/dev/null' EXIT
unshare -m --propagation private sh -c '
	mount -t tmpfs -o size=256k,mode=0700 moat-diskfull "$1" || exit 1
	"$2" "$1"
' sh "$dir" "$build/tests/netns/zstate_diskfull"
