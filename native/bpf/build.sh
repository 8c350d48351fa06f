#!/bin/sh
# Compiles points.bpf.c into a BPF object (CO-RE: offsets relocated at load
# from the kernel's BTF). Called by binding.gyp: build.sh OUTPUT
set -eu
here=$(dirname "$0")
cc=$(command -v clang-14 || command -v clang)
arch=$(uname -m)
case "$arch" in x86_64) inc=/usr/include/x86_64-linux-gnu ;; aarch64) inc=/usr/include/aarch64-linux-gnu ;; *) inc=/usr/include/$arch-linux-gnu ;; esac
# build.sh OUTPUT [SOURCE]: SOURCE defaults to points.bpf.c
exec "$cc" -O2 -g -Wall -target bpf -I"$inc" -c "$here/${2:-points.bpf.c}" -o "$1"
