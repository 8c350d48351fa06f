#!/usr/bin/env bash
# Installs everything svtrace (and, with --tests, its tests) needs on Debian 12, and is quick
# when it is all already there: Debian packages (as root), npm dependencies,
# the native addon (node-gyp, at `npm ci`) and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86, busybox-static, kmod: the lab's QEMU guest (`lab up --vm qemu`; its image is prepared below)
# libbpf-dev, clang-14, bpftool, pkg-config: the binary trace engine (native/bpf/points.bpf.c, `trace --engine bpf`)
packages=(bpftrace libbpf-dev clang-14 bpftool pkg-config tshark tcpreplay tcpdump openvswitch-switch iproute2 python3-pandas fonts-dejavu-core qemu-system-x86 busybox-static kmod)
# --tests: also what only the tests use (headless Chromium opens report.html).
if [ "${1:-}" = "--tests" ]; then packages+=(chromium); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 3
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q "${missing[@]}" >&2
fi

# tracefs for bpftrace's tracepoints (normally mounted already)
if [ "$(id -u)" -eq 0 ] && [ ! -e /sys/kernel/tracing/events ] && [ -d /sys/kernel/tracing ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi

# The QEMU guest's kernel and initramfs, from Debian packages, into a cache (no download at run time).
# SVTRACE_GUEST_DIR moves the cache; quick when it is current.
if [ "$(id -u)" -eq 0 ]; then
  scripts/guest/build.sh "${SVTRACE_GUEST_DIR:-/var/cache/svtrace/guest}" >&2
fi

stamp=node_modules/.svtrace-setup
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ ! -f native/build/Release/svtrace_net.node ]; then
  npm ci --no-audit --no-fund >&2
  touch "$stamp"
elif { [ ! -f native/build/Release/points.bpf.o ] || [ ! -f native/build/Release/recorder.bpf.o ]; } && pkg-config --exists libbpf 2>/dev/null; then
  # libbpf arrived after the addon was built (or an older build lacks the recorder): build it again with the binary engines
  npm run install >&2
elif [ -n "$(find native -name '*.[ch]' -newer native/build/Release/svtrace_net.node -print -quit)$(find native/binding.gyp -newer native/build/Release/svtrace_net.node -print -quit)" ]; then
  # C sources changed since the addon was built (a pull, a rebase): rebuild it
  npm run install >&2
fi
if [ ! -f dist/cli.js ] || [ -n "$(find src -newer dist/cli.js -print -quit)" ]; then
  npm run build >&2
fi
