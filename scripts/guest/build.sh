#!/usr/bin/env bash
# Prepares the svtrace lab's QEMU guest in a cache directory, from Debian
# packages only (no download at run time):
#   <cache>/vmlinuz         Debian's generic kernel (linux-image-amd64's dependency)
#   <cache>/initramfs.img   busybox-static, the virtio/9p/overlay modules, scripts/guest/init
#   <cache>/modules/        the guest kernel's whole module tree (netem, ifb, ...), depmod'ed
#   <cache>/guest.json      kernel release and what built it
# Quick when the cache is current. Needs root (apt-get download), busybox-static, kmod.
# Usage: scripts/guest/build.sh [CACHE_DIR]   (default /var/cache/svtrace/guest)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-/var/cache/svtrace/guest}"
busybox=/bin/busybox
applets=$([ -x "$busybox" ] && "$busybox" --list || true)
grep -qx cpio <<< "$applets" || { echo "guest: busybox-static is not installed (/bin/busybox with cpio)" >&2; exit 3; }

resolve() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1; }
pkg=$(resolve)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then apt-get update -q >&2; pkg=$(resolve); fi
[ -n "$pkg" ] || { echo "guest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 3; }
recipe=$(cat "$here/init" "$here/build.sh" | sha256sum | cut -c1-16)
if [ -f "$cache/guest.json" ] && grep -q "\"package\": \"$pkg\"" "$cache/guest.json" && grep -q "\"recipe\": \"$recipe\"" "$cache/guest.json" \
   && [ -f "$cache/vmlinuz" ] && [ -f "$cache/initramfs.img" ]; then
  exit 0
fi
echo "guest: preparing $pkg in $cache" >&2
mkdir -p "$cache"
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
(cd "$work" && chown _apt "$work" 2>/dev/null || true; cd "$work" && apt-get download -q "$pkg" >&2)
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/pkg"
release=$(ls "$work/pkg/lib/modules")
depmod -b "$work/pkg" "$release"

root="$work/initramfs"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev"
cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 0755 "$root/init"
: > "$root/modules.load"
for mod in virtio_pci virtio_net virtio_console 9pnet_virtio 9p overlay; do
  # insmod lines in dependency order; builtins print "builtin"
  modprobe -d "$work/pkg" -S "$release" --show-depends "$mod" | while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    rel="${path#"$work/pkg/"}"
    grep -qx "$rel" "$root/modules.load" && continue
    mkdir -p "$root/$(dirname "$rel")"
    cp "$path" "$root/$rel"
    echo "$rel" >> "$root/modules.load"
  done
done
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.img"

rm -rf "$cache/modules" "$cache/vmlinuz" "$cache/initramfs.img"
mv "$work/pkg/lib/modules/$release" "$cache/modules"
mv "$work/pkg/boot/vmlinuz-$release" "$cache/vmlinuz"
mv "$work/initramfs.img" "$cache/initramfs.img"
printf '{\n  "package": "%s",\n  "release": "%s",\n  "recipe": "%s"\n}\n' "$pkg" "$release" "$recipe" > "$cache/guest.json"
echo "guest: ready ($release)" >&2
