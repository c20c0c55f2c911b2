#!/bin/bash
# podman-env.sh - source it: a private podman configuration under DIR
# (default a new temporary directory) so nothing of the host's podman
# state or /etc/containers is used or changed, and podman works on these
# hosts: runc (crun refuses hybrid cgroups), cgroup manager cgroupfs,
# default_ulimits (the sandbox cannot raise RLIMIT_NOFILE), file locks
# (no /dev/shm/libpod_lock), storage, runtime state, networks and events
# all under DIR.
#   . docker/podman-env.sh [DIR]    sets PODMAN_DIR, CONTAINERS_CONF,
#                                   CONTAINERS_STORAGE_CONF
#   podman_env_reset                containers, images and storage removed,
#                                   and podman's own state outside DIR
#                                   that was not there before
PODMAN_DIR=${1:-$(mktemp -d /tmp/moat-podman.XXXXXX)}
# what rootful podman makes outside its configuration whatever it says
# (runc's state, the blob-info cache): removed by podman_env_reset when
# they were not there before
PODMAN_CREATED=()
for d in /run/runc /var/lib/containers /run/containers /run/libpod; do
	[ -e "$d" ] || PODMAN_CREATED+=("$d")
done
mkdir -p "$PODMAN_DIR"/{graph,run,tmp,net,volumes,libpod}
# podman's defaults (nofile and nproc 1048576) cannot be set in this
# sandbox: nofile as this shell has it, nproc lowered (setting even the
# current value fails with EPERM here; a lower one is allowed)
cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Sn):$(ulimit -Hn)", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
lock_type = "file"
tmp_dir = "$PODMAN_DIR/tmp"
static_dir = "$PODMAN_DIR/libpod"
volume_path = "$PODMAN_DIR/volumes"
[network]
network_config_dir = "$PODMAN_DIR/net"
EOF
cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/graph"
runroot = "$PODMAN_DIR/run"
EOF
export PODMAN_DIR CONTAINERS_CONF=$PODMAN_DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
export CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf
# buildah's temporary layers (default /var/tmp)
export TMPDIR=$PODMAN_DIR/tmp
: >"$CONTAINERS_REGISTRIES_CONF"

podman_env_reset() {
	podman rm -af -t 0 >/dev/null 2>&1
	podman system reset -f >/dev/null 2>&1
	# storage may hold files owned by other uids or still-mounted layers:
	# unmount what is left under DIR before removing it
	findmnt -rn -o TARGET | grep "^$PODMAN_DIR/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$PODMAN_DIR"
	for d in "${PODMAN_CREATED[@]}"; do
		rm -rf "$d"
	done
}
