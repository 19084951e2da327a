// The systemd unit the provisioning script installs: `zeroboot serve` with
// the farm's configuration, restarted on failure, with the network
// capabilities it needs rather than every capability root has.
export const UNIT_NAME = 'zeroboot.service';

export function serviceUnit(opts: { root: string; config: string; farmId: number }): string {
  return `# Written by scripts/provision-farm.mjs (farm ${opts.farmId}); a re-run rewrites it.
[Unit]
Description=zeroboot netboot server (farm ${opts.farmId})
Documentation=file://${opts.root}/docs/farmer.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${opts.root}/bin/zeroboot serve --config ${opts.config}
Restart=on-failure
RestartSec=2
StateDirectory=zeroboot
# DHCP and TFTP ports below 1024, sockets pinned to the farm interface, broadcasts.
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN CAP_NET_BROADCAST CAP_DAC_READ_SEARCH
AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN CAP_NET_BROADCAST
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=read-only
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}
