// The reason a DHCP packet was ignored, as one of a fixed set of words: the
// timeline's reasons carry client text (addresses, types, hop counts), so
// used as a label they would let a client mint series.
export const DHCP_IGNORE_REASONS = [
  'malformed', 'not_request', 'not_ethernet', 'relay_loop', 'bootp', 'server_message', 'other_server',
  'not_netboot', 'wrong_port', 'no_subnet', 'not_held', 'incomplete', 'pool_full', 'reply_too_big',
  'lease_not_stored', 'lease_db', 'internal_error', 'other',
] as const;

export type DhcpIgnoreReason = (typeof DHCP_IGNORE_REASONS)[number];

// First match wins; the texts are boot/dhcp's (request.ts screen, full.ts, proxy.ts, boot-server.ts, reply.ts, server.ts, lease-pg.ts).
const RULES: readonly [RegExp, DhcpIgnoreReason][] = [
  [/^malformed packet/, 'malformed'],
  [/^internal error/, 'internal_error'],
  [/^lease not stored/, 'lease_not_stored'],
  [/^lease database/, 'lease_db'],
  [/^reply does not fit/, 'reply_too_big'],
  [/not a BOOTREQUEST/, 'not_request'],
  [/only Ethernet is served/, 'not_ethernet'],
  [/relay loop/, 'relay_loop'],
  [/plain BOOTP/, 'bootp'],
  [/is a server message|not one a client sends/, 'server_message'],
  [/another server's offer|left to the server that leased it/, 'other_server'],
  [/not a network-boot client/, 'not_netboot'],
  [/boot-server port|^proxy mode: a /, 'wrong_port'],
  [/not in the pool subnet/, 'no_subnet'],
  [/which this client does not hold/, 'not_held'],
  [/INFORM without ciaddr|no requested address|names no address|is not served|not offered to this client|reserved address is|lease is for/, 'incomplete'],
  [/no free address|pool is full|exhausted/i, 'pool_full'],
];

export function ignoreReason(text: string): DhcpIgnoreReason {
  for (const [re, reason] of RULES) if (re.test(text)) return reason;
  return 'other';
}
