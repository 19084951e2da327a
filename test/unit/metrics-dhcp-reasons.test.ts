// Each reason the DHCP server gives for ignoring a packet (the texts of
// boot/dhcp, with sample values) lands in its own label value, not in
// "other": a changed text there shows up here rather than as a silent
// shift of counts into "other".
import test from 'ava';
import { ignoreReason, type DhcpIgnoreReason } from '../../boot/metrics/dhcp-reasons.ts';

const CASES: [string, DhcpIgnoreReason][] = [
  ['malformed packet: 8 bytes, shorter than the 240-byte header', 'malformed'],
  ['internal error: x is undefined', 'internal_error'],
  ['lease not stored, ACK withheld: ENOSPC', 'lease_not_stored'],
  ['lease database 127.0.0.1:5432/zeroboot unreachable: no new leases until it answers', 'lease_db'],
  ['lease database 127.0.0.1:5432/zeroboot busy: 256 decisions waiting', 'lease_db'],
  ['reply does not fit: options need 700 bytes', 'reply_too_big'],
  ['not a BOOTREQUEST (op != 1): a server reply reached the server port', 'not_request'],
  ['hardware type 6 length 6: only Ethernet is served', 'not_ethernet'],
  ['relayed 17 times (over 16): a relay loop', 'relay_loop'],
  ['no DHCP message type (option 53): plain BOOTP is not served', 'bootp'],
  ['a DHCP OFFER is a server message; another DHCP server may be answering at 10.0.0.9', 'server_message'],
  ['DHCP message type 99 is not one a client sends to a server', 'server_message'],
  ['REQUEST for server 10.0.0.2: the client chose another server\'s offer', 'other_server'],
  ['REQUEST (renewing) for 10.0.0.5 from a client this server has no record of: left to the server that leased it (dhcp.authoritative: true answers it)', 'other_server'],
  ['not a network-boot client (no PXEClient/HTTPClient/iPXE): proxy mode leaves it to the address server', 'not_netboot'],
  ['not a network-boot client on the boot-server port', 'not_netboot'],
  ['a DISCOVER on the boot-server port 4011', 'wrong_port'],
  ['proxy mode: a RELEASE on port 67 is for the address server', 'wrong_port'],
  ['relay 10.9.0.1 is not in the pool subnet; no addresses for that network', 'no_subnet'],
  ['interface br1 (10.9.0.1) is not in the pool subnet', 'no_subnet'],
  ['DECLINE for 10.0.0.5, which this client does not hold', 'not_held'],
  ['RELEASE for 10.0.0.5, which this client does not hold', 'not_held'],
  ['INFORM without ciaddr', 'incomplete'],
  ['REQUEST names our server but no requested address (option 50)', 'incomplete'],
  ['REQUEST names no address (no option 50, no ciaddr)', 'incomplete'],
  ['DHCP message type 8 is not served', 'incomplete'],
  ['address pool 10.0.0.100-10.0.0.103 is exhausted', 'pool_full'],
  ['something new', 'other'],
];

test('every reason text of the DHCP server maps to its label value', (t) => {
  for (const [text, reason] of CASES) t.is(ignoreReason(text), reason, text);
});
