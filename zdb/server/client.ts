// One connected client: its parser, selected namespace, rights and the
// replies of the batch being processed.
import type { Socket } from 'node:net';
import type { Namespace } from '../engine/index.ts';
import { RequestParser } from '../resp/parser.ts';
import { ReplyBuffer } from './replies.ts';

export interface Watch {
  /** the command table entry waited for ('*' = any) */
  command: string;
  timer: NodeJS.Timeout;
}

export class Client {
  readonly id: number;
  readonly socket: Socket;
  readonly parser = new RequestParser();
  readonly out = new ReplyBuffer();
  /** undefined once its namespace was deleted: the next command gets told and disconnected */
  ns: Namespace | undefined;
  writable: boolean;
  admin: boolean;
  nonce: string | undefined;
  mirror = false;
  master = false;
  watching: Watch | undefined;
  /** the current batch wrote something (acknowledged only after fsync with --sync) */
  wrote = false;
  /** replies waiting for an fsync, in order */
  held: Buffer[] = [];
  /** how many of `held` the running fsync covers */
  syncMark = 0;
  closing = false;
  commands = 0;

  constructor(id: number, socket: Socket, ns: Namespace, writable: boolean, admin: boolean) {
    this.id = id;
    this.socket = socket;
    this.ns = ns;
    this.writable = writable;
    this.admin = admin;
  }
}
