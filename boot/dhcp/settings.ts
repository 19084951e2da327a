// What the DHCP server is given: its own options only, mapped from the
// server configuration by the caller (boot/server.ts), as TFTP is.

export const DHCP_MODES = ['full', 'proxy', 'off'] as const;
export type DhcpServeMode = (typeof DHCP_MODES)[number];

export interface DhcpPoolSettings {
  start: string;
  end: string;
  subnetMask: string;
  router?: string;
  dns: string[];
  domain?: string;
  leaseSeconds: number;
}

export interface DhcpSettings {
  mode: DhcpServeMode;
  /** The server's address: option 54 on the interface that carries it, and how that interface is found. */
  address: string;
  /** Interfaces to serve; empty: the one carrying `address`. */
  interfaces: string[];
  port: number;
  /** The PXE boot-server port (4011). */
  proxyPort: number;
  /** NAK requests for addresses we do not hold instead of staying silent (RFC 2131 4.3.2). */
  authoritative: boolean;
  /** Full mode only. */
  pool?: DhcpPoolSettings;
  /** Where full mode keeps its leases. */
  leasesFile: string;
  /** A PostgreSQL URL: full mode's leases live in its table, shared with other servers, instead of leasesFile. */
  pg?: string;
  /** MAC -> fixed address. */
  reservations: [string, string][];
  /** Base URL of the HTTP server, no trailing slash: iPXE scripts and UEFI HTTP Boot binaries live under it. */
  httpBase: string;
}
