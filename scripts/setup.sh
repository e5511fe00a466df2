#!/usr/bin/env bash
# Makes this checkout ready to run: Debian packages, node modules, build, kernel tracing mounts.
# Every step checks before it acts, so a second run takes a fraction of a second.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }

# Debian packages: bpftrace runs the kernel probes; bpftool lets tests check nothing is left
# loaded; strace and gcc serve the benchmark and test workloads; nats-server the cluster bus;
# iproute2 the network namespaces that cluster tests cut hosts off in; openssl the TLS test's
# throwaway CA; script (bsdutils) the pseudo-terminal the shell is tested on; chromium the browser
# fay web's page is tested in (driven by playwright-core; never a downloaded browser); golang-go
# for go tool pprof, which reads the profiles --pprof writes in the tests; libbpf-dev for the native
# backend's loader.
declare -A wanted=([bpftrace]=bpftrace [bpftool]=bpftool [strace]=strace [gcc]=gcc [nats-server]=nats-server [ip]=iproute2 [setpriv]=util-linux [script]=bsdutils [openssl]=openssl [chromium]=chromium [go]=golang-go [prometheus]=prometheus)
missing=()
for cmd in "${!wanted[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}"); done
# libbpf-dev: the headers and library Fay's own eBPF loader (the native backend) is built against.
[ -f /usr/include/bpf/bpf.h ] || missing+=(libbpf-dev)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    say "these Debian packages are missing and installing them needs root: ${missing[*]}"
    exit 3
  fi
  say "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Node modules, exactly as locked.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# Build when any source is newer than the last build.
if [ ! -f dist/.built ] || [ -n "$(find src web package.json tsconfig.json tsconfig.build.json scripts/build.sh -newer dist/.built -print -quit)" ]; then
  say "building"
  # The package's build (scripts/build.sh): the library, the command's bundle, what runs beside them.
  npm run --silent build
fi

# bpftrace finds tracepoints through tracefs (and 0.17 still looks under debugfs).
if [ "$(id -u)" = 0 ]; then
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  mountpoint -q /sys/kernel/debug || mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true
fi
