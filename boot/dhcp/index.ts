// The DHCP part of the boot server: codec, classifier, address pool and server.
export { startDhcpServer, DhcpServerError } from './server.ts';
export type { DhcpServer, DhcpServerOptions } from './server.ts';
export type { DhcpSettings, DhcpPoolSettings, DhcpServeMode } from './settings.ts';
export { classify, clientFacts, isIpxe, DEFAULT_RULES, ARCH } from './classifier.ts';
export type { BootDecision, ClassRule, ClientFacts, ClassifyContext } from './classifier.ts';
export { LeasePool, LeasePoolError } from './leases.ts';
export type { LeaseInfo, LeaseRecord, LeaseState } from './leases.ts';
export { LeaseFile, LeaseFileError } from './lease-file.ts';
export * from './codec.ts';
export * from './options.ts';
