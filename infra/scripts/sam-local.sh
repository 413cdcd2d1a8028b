#!/usr/bin/env bash
# make sam-local: every function's `sam build` artifact in its local form (.aws-sam/local,
# arm64, built by make sam-local with shared's `local` feature) runs under
# SAM's own Lambda emulator (`sam local invoke`) against DynamoDB Local, with the checks of
# the Lambda-level tests (tests/sam_local shares them with tests/lambda).
#
# What it needs and sets up, offline and idempotently (as root, on Debian):
# - Debian's docker.io, debootstrap, qemu-user-static and binfmt-support.
# - A container engine of its own: dockerd with its own data root, socket and pid under
#   .local/sam-local, started here and stopped by its pid when done.
# - A stand-in for the image SAM builds its invoke image FROM,
#   public.ecr.aws/lambda/provided:al2023-arm64: a minimal Debian bookworm arm64 root file
#   system (debootstrap, first stage, with ca-certificates) under that tag. It is NOT
#   Amazon Linux 2023; what the bootstraps need of it is /bin/sh and glibc >= 2.30 (the
#   newest symbol version they link), which both have (AL2023: 2.34, the stand-in: 2.36). With internet access, drop
#   --skip-pull-image (tests/sam_local) and SAM pulls AWS's real image instead.
# - arm64 binaries run under qemu-user-static through binfmt_misc.
# Traffic stays on this machine: containers talk only to the host over Docker's bridge
# (no masquerading, and a DOCKER-USER rule drops anything they send beyond it); DynamoDB
# Local stays on 127.0.0.1 and the containers reach it through a forwarder listening on the
# bridge's host address only. When done, everything the daemon changed is put back (its
# bridge, iptables and ip6tables as they were, binfmt registrations, ip_forward), and the
# host is compared with how it was before: a difference fails the run.
#   sam-local.sh            (runs inside with-stack.sh, which starts DynamoDB Local)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state="$root/.local/sam-local"
say() { echo "sam-local: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (it starts a Docker daemon of its own)"; exit 1; }
[ -n "${DYNAMODB_ENDPOINT:-}" ] || { say "run it inside infra/scripts/with-stack.sh"; exit 1; }
[ -f "$root/.aws-sam/local/template.yaml" ] || { say "no .aws-sam/local: run make sam-local"; exit 1; }
mkdir -p "$state"

missing=()
for tool in dockerd:docker.io debootstrap:debootstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { say "install ${missing[*]} (Debian packages)"; exit 1; }
  say "installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"; } >"$state/apt.log" 2>&1 || { cat "$state/apt.log" >&2; exit 1; }
fi

# The host as it is now, to compare with at the end.
host_state() {
  # Rules and chains of our own; a table holding nothing else (only its built-in chains
  # accepting) reads as no table, as on a host that never had a firewall. grep finding no
  # line must not end the script under pipefail.
  { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | { grep -Ev '^(#|\*|COMMIT|:[A-Z]+ ACCEPT)' || true; } |
    sed 's/\[[0-9]*:[0-9]*\]//'
  ip -o link show | awk -F': ' '{print $2}' | sort
  ls /proc/sys/fs/binfmt_misc 2>/dev/null | sort
  cat /proc/sys/net/ipv4/ip_forward
}
host_state >"$state/host-before"
iptables-save >"$state/iptables-before" 2>/dev/null || true
ip6tables-save >"$state/ip6tables-before" 2>/dev/null || true
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)

mounted_binfmt=""
enabled_qemu=""
dockerd_pid=""
forwarder_pid=""
restore() {
  # Every step runs whatever the one before did; a second Ctrl-C does not cut it short.
  set +e
  trap '' INT TERM
  if [ -n "$forwarder_pid" ]; then kill "$forwarder_pid" 2>/dev/null; wait "$forwarder_pid" 2>/dev/null; fi
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  ip link delete docker0 2>/dev/null || true
  # Every table as it was: emptied (rules, our chains, built-in policies back to ACCEPT),
  # then the saved rules put back; a table that was not there stays empty.
  for cmd in iptables ip6tables; do
    for t in $($cmd-save 2>/dev/null | sed -n 's/^\*//p'); do
      $cmd -t "$t" -F 2>/dev/null; $cmd -t "$t" -X 2>/dev/null
      for c in $($cmd-save -t "$t" 2>/dev/null | sed -n 's/^:\([A-Z]*\) .*/\1/p'); do $cmd -t "$t" -P "$c" ACCEPT 2>/dev/null; done
    done
  done
  if [ -s "$state/iptables-before" ]; then iptables-restore <"$state/iptables-before" 2>/dev/null; fi
  if [ -s "$state/ip6tables-before" ]; then ip6tables-restore <"$state/ip6tables-before" 2>/dev/null; fi
  echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward 2>/dev/null
  if [ -n "$enabled_qemu" ]; then update-binfmts --disable qemu-aarch64 >/dev/null 2>&1; fi
  if [ -n "$mounted_binfmt" ]; then umount /proc/sys/fs/binfmt_misc 2>/dev/null; fi
  host_state >"$state/host-after"
  if ! diff -u "$state/host-before" "$state/host-after" >&2; then
    say "the host does not look as before (above)"
    exit 1
  fi
}
trap restore EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# arm64 binaries under qemu.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  mounted_binfmt=1
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null
  enabled_qemu=1
fi

# The daemon: its own files, no masquerading, no forwarding set up by it.
export DOCKER_HOST="unix://$state/docker.sock"
dockerd --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \
  -H "$DOCKER_HOST" --userland-proxy=false --ip-masq=false --ip-forward=false \
  >"$state/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 300); do docker version >/dev/null 2>&1 && break; kill -0 "$dockerd_pid" 2>/dev/null || { cat "$state/dockerd.log" >&2; exit 1; }; sleep 0.1; done
docker version >/dev/null 2>&1 || { say "dockerd did not start"; exit 1; }
# Containers may talk to this machine and nothing beyond it.
iptables -I DOCKER-USER -i docker0 ! -o docker0 -j DROP
bridge=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)

# The stand-in base image, built once (the root file system is kept in .local).
image=public.ecr.aws/lambda/provided:al2023-arm64
if ! docker image inspect "$image" >/dev/null 2>&1; then
  if [ ! -f "$state/rootfs-arm64.tar" ]; then
    say "building a Debian arm64 root file system (debootstrap, first stage)"
    rm -rf "$state/rootfs"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    debootstrap --foreign --variant=minbase --arch=arm64 --include=ca-certificates bookworm \
      "$state/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$state/debootstrap.log" 2>&1 \
      || { tail -20 "$state/debootstrap.log" >&2; exit 1; }
    rm -rf "$state/rootfs/debootstrap" "$state/rootfs/var/cache/apt/archives/"*.deb
    # The first stage configures nothing: the CA bundle is the host's (the same Debian
    # package, architecture-independent).
    mkdir -p "$state/rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$state/rootfs/etc/ssl/certs/"
    tar -C "$state/rootfs" -cf "$state/rootfs-arm64.tar" .
    rm -rf "$state/rootfs"
  fi
  mkdir -p "$state/image"
  cp "$state/rootfs-arm64.tar" "$state/image/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\n' >"$state/image/Dockerfile"
  DOCKER_BUILDKIT=0 docker build --platform linux/arm64 -t "$image" "$state/image" >"$state/build.log" 2>&1 \
    || { cat "$state/build.log" >&2; exit 1; }
  rm -rf "$state/image"
fi

# DynamoDB Local, for the containers only: a forwarder on the bridge's host address.
ddb_port=${DYNAMODB_ENDPOINT##*:}
fwd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$root/infra/scripts/forward.py" "$bridge" "$fwd_port" 127.0.0.1 "$ddb_port" &
forwarder_pid=$!
# Only from the containers' side (and this machine itself), whatever routes others have:
# the first two rules end up above the third.
iptables -I INPUT -p tcp -d "$bridge" --dport "$fwd_port" -j DROP
iptables -I INPUT -p tcp -d "$bridge" --dport "$fwd_port" -i docker0 -j ACCEPT
iptables -I INPUT -p tcp -d "$bridge" --dport "$fwd_port" -i lo -j ACCEPT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/"$bridge"/"$fwd_port") 2>/dev/null && break; sleep 0.1; done

say "invoking every function under sam local invoke"
started=$(date +%s)
SAM_LOCAL_DYNAMODB_ENDPOINT="http://$bridge:$fwd_port" PATH="$root/.venv/bin:$PATH" \
  "${CARGO:-cargo}" test -p stockhold-tests --test sam_local -- --nocapture
say "done in $(( $(date +%s) - started ))s"
