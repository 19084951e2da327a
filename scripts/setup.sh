#!/usr/bin/env bash
# Idempotent set-up for a Debian 12 machine, as root: Debian packages,
# a Node LTS >= 22 when the system one is older, npm packages, native addon.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(qemu-system-x86 qemu-utils ipxe ipxe-qemu ovmf busybox-static udhcpc isc-dhcp-client ceph-mon ceph-osd radosgw ceph-common
  dnsmasq tftpd-hpa atftp tftp-hpa kea-admin nginx-light redis-tools redis-server
  tshark iproute2 nftables cpio binutils xz-utils zstd strace curl ca-certificates python3 make g++)
# The node agent: pools are btrfs; its tests make disks of every kind the agent must leave alone.
DEBS+=(btrfs-progs fdisk dosfstools xfsprogs cryptsetup-bin mount util-linux)
# Boot media (UKI, hybrid ISO, USB image): the EFI stub, xorriso, FAT tools, isolinux/syslinux and GRUB's BIOS/EFI modules.
DEBS+=(systemd-boot-efi xorriso mtools isolinux syslinux syslinux-common grub-efi-amd64-bin grub-pc-bin)
# The dashboard's browser test: Debian's chromium, driven by playwright-core.
DEBS+=(chromium)
# Several servers sharing one state: PostgreSQL from Debian (its tests start their own cluster).
DEBS+=(postgresql)
# Debian's npm conflicts with a Node installed from elsewhere: only add it when npm is absent.
command -v npm >/dev/null 2>&1 || DEBS+=(nodejs npm)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -q
  # tshark asks whether non-root users may capture; answer for it.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts these daemons on install; our tests and benchmarks start their own.
for svc in tftpd-hpa dnsmasq nginx redis-server postgresql; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
done

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
. scripts/env.sh
if [ "$(node_major node)" -lt 22 ]; then
  echo "setup: installing Node 24 under ${ZEROBOOT_NODE_PREFIX}"
  bash scripts/install-node.sh "$ZEROBOOT_NODE_PREFIX" >/dev/null
  . scripts/env.sh
fi
echo "setup: node $(node --version)"

stamp=node_modules/.zeroboot-setup
# npm ci also builds the native addons (the package's install script).
addons=build/.zeroboot-addons
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
  touch "$stamp" "$addons"
fi
# The addons again when binding.gyp or a native source changed since they were
# built, or one of binding.gyp's targets is missing (a pull that adds one).
addons_stale() {
  [ -f "$addons" ] || return 0
  local t
  for t in $(sed -n 's/.*"target_name": *"\([^"]*\)".*/\1/p' binding.gyp); do
    [ -f "build/Release/$t.node" ] || return 0
  done
  [ -n "$(find binding.gyp $(find . -path ./node_modules -prune -o -type d -name native -print) -newer "$addons" -type f 2>/dev/null)" ]
}
if addons_stale; then
  echo "setup: building the native addons"
  npm run install --silent
  touch "$addons"
fi
echo "setup: done"
