// Numbered files of one namespace (`d<N>` or `i<N>`): an fd cache and
// positional reads/writes. Every write goes to an explicit position (no
// O_APPEND: Linux ignores the position of pwrite on O_APPEND descriptors, and
// DEL must rewrite an index flag in place).
import fs from 'node:fs';
import path from 'node:path';

export class FileSet {
  readonly dir: string;
  readonly prefix: string;
  private fds = new Map<number, number>();
  /** fds written since the last sync (for group commit) */
  readonly dirty = new Set<number>();

  constructor(dir: string, prefix: string) {
    this.dir = dir;
    this.prefix = prefix;
  }

  path(id: number): string {
    return path.join(this.dir, `${this.prefix}${id}`);
  }

  exists(id: number): boolean {
    return fs.existsSync(this.path(id));
  }

  /** Ids 0..n-1 that exist without a gap, like the reference's availability check. */
  count(): number {
    let n = 0;
    while (this.exists(n)) n++;
    return n;
  }

  size(id: number): number {
    return fs.fstatSync(this.fd(id)).size;
  }

  fd(id: number): number {
    let fd = this.fds.get(id);
    if (fd === undefined) {
      fd = fs.openSync(this.path(id), 'r+');
      this.fds.set(id, fd);
    }
    return fd;
  }

  /** Creates file `id` holding exactly `header` (replacing any old file). */
  create(id: number, header: Buffer): void {
    this.closeOne(id);
    const fd = fs.openSync(this.path(id), 'w+', 0o600);
    fs.writeSync(fd, header, 0, header.length, 0);
    this.fds.set(id, fd);
    this.dirty.add(fd);
  }

  write(id: number, buf: Buffer, length: number, position: number): void {
    const fd = this.fd(id);
    let done = 0;
    while (done < length) done += fs.writeSync(fd, buf, done, length - done, position + done);
    this.dirty.add(fd);
  }

  /** Reads exactly `length` bytes, or fewer at the end of the file. */
  read(id: number, position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    const n = this.readInto(id, buf, position, length);
    return n === length ? buf : buf.subarray(0, n);
  }

  readInto(id: number, buf: Buffer, position: number, length: number): number {
    const fd = this.fd(id);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  readAll(id: number): Buffer {
    return fs.readFileSync(this.path(id));
  }

  truncate(id: number, length: number): void {
    fs.ftruncateSync(this.fd(id), length);
    this.dirty.add(this.fd(id));
  }

  remove(id: number): void {
    this.closeOne(id);
    fs.rmSync(this.path(id), { force: true });
  }

  /** Takes the dirty set for a sync batch. */
  takeDirty(): number[] {
    const fds = [...this.dirty];
    this.dirty.clear();
    return fds;
  }

  syncNowSync(): void {
    for (const fd of this.takeDirty()) fs.fdatasyncSync(fd);
  }

  closeOne(id: number): void {
    const fd = this.fds.get(id);
    if (fd === undefined) return;
    this.fds.delete(id);
    this.dirty.delete(fd);
    fs.closeSync(fd);
  }

  close(): void {
    for (const id of [...this.fds.keys()]) this.closeOne(id);
  }
}
