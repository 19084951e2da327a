// TFTP for network boot: read-only server over the image store (RFC 1350,
// 2347, 2348, 2349, 7440) and the pure codec and session it is built from.
export { startTftpServer, TftpServerError, DEFAULT_MAX_TRANSFERS_PER_CLIENT, DEFAULT_FIRST_RETRIES } from './server.ts';
export type { TftpServer, TftpServerOptions } from './server.ts';
export {
  decode, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, peekAck, writeDataHeader,
  ErrorCode, Opcode, TftpDecodeError,
} from './codec.ts';
export type { TftpOption, TftpPacket, TftpRequest } from './codec.ts';
export { negotiate, ReadSession, DEFAULT_BLKSIZE, MAX_BLKSIZE, MAX_WINDOWSIZE } from './session.ts';
export type { Negotiated, NegotiationLimits, ReadSessionOptions, SessionOutput, SessionState } from './session.ts';
