// The configuration `zeroboot serve` uses when no file is given: proxy DHCP
// (safe next to an existing DHCP server), the Debian iPXE binaries, and one
// profile that boots the image built into ./images/default.
export const DEFAULT_CONFIG_YAML = `
server:
  dhcp:
    mode: proxy
  http:
    port: 8080
  management:
    host: 127.0.0.1
    port: 8081
  tftp:
    port: 69
  ipxeDir: /usr/lib/ipxe
  stateDir: /var/lib/zeroboot
store:
  - prefix: images
    dir: images
profiles:
  - name: zos
    kernel: images/default/vmlinuz
    initrd: images/default/initramfs.img
    args:
      runmode: prod
      version: v3
      panic: 7200
      farmer_id: 0
      console: ttyS0
groups:
  - name: default
    profile: zos
    selector: {}
`;
