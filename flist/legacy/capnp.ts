// A small reader for Cap'n Proto messages in the standard (unpacked) stream
// framing: the segment table, struct and list pointers, far pointers (single
// and double landing pads), text and data. Enough for 0-flist's schema; no
// schema compiler, no writer. Every offset is bounds-checked and the words
// visited are capped (the traversal limit of the reference implementations),
// so a hostile message fails with a CapnpError instead of looping or reading
// outside its buffer.

/** A message that does not decode; the caller adds which file and key it came from. */
export class CapnpError extends Error {
  override name = 'CapnpError';
}

const MAX_SEGMENTS = 512;
const MAX_DEPTH = 64;
/** Words that may be visited per word of message: reading a list twice is fine, amplification by a loop is not. */
const TRAVERSAL_FACTOR = 8;

interface Budget {
  left: number;
}

/** Where an object starts: a segment and a word index inside it. */
interface Location {
  segment: number;
  word: number;
}

export class CapnpMessage {
  readonly segments: Buffer[];
  readonly #budget: Budget;

  private constructor(segments: Buffer[], totalWords: number) {
    this.segments = segments;
    this.#budget = { left: Math.max(totalWords * TRAVERSAL_FACTOR, 64) };
  }

  /** Parses the framing; the segments are views into `buf`, not copies. */
  static parse(buf: Buffer): CapnpMessage {
    if (buf.length < 8) throw new CapnpError(`a message is at least 8 bytes, got ${buf.length}`);
    const count = buf.readUInt32LE(0) + 1;
    if (count > MAX_SEGMENTS) throw new CapnpError(`${count} segments announced, at most ${MAX_SEGMENTS} accepted`);
    const tableWords = Math.ceil((4 + 4 * count) / 8);
    if (buf.length < tableWords * 8) throw new CapnpError('the segment table is cut short');
    let offset = tableWords * 8;
    const segments: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const words = buf.readUInt32LE(4 + 4 * i);
      const end = offset + words * 8;
      if (end > buf.length) throw new CapnpError(`segment ${i} of ${words} words runs past the end of the ${buf.length}-byte message`);
      segments.push(buf.subarray(offset, end));
      offset = end;
    }
    return new CapnpMessage(segments, (offset - tableWords * 8) / 8);
  }

  /** The root struct (the pointer in the first word of segment 0). */
  root(): StructReader {
    if (this.segments[0].length < 8) throw new CapnpError('segment 0 has no root pointer');
    const s = this.readPointer({ segment: 0, word: 0 }, 0);
    if (s === undefined) throw new CapnpError('the root pointer is null');
    if (!(s instanceof StructReader)) throw new CapnpError('the root pointer is not a struct');
    return s;
  }

  /** Charges `words` to the traversal budget. */
  visit(words: number): void {
    this.#budget.left -= Math.max(words, 1);
    if (this.#budget.left < 0) throw new CapnpError('traversal limit exceeded (pointers loop or point to the same data over and over)');
  }

  #word(at: Location): bigint {
    const seg = this.segments[at.segment];
    if (seg === undefined) throw new CapnpError(`pointer to segment ${at.segment}, the message has ${this.segments.length}`);
    if (at.word < 0 || (at.word + 1) * 8 > seg.length) throw new CapnpError(`pointer at word ${at.word} outside segment ${at.segment} (${seg.length / 8} words)`);
    return seg.readBigUInt64LE(at.word * 8);
  }

  #checkRange(segment: number, word: number, words: number): void {
    const seg = this.segments[segment];
    if (seg === undefined) throw new CapnpError(`pointer to segment ${segment}, the message has ${this.segments.length}`);
    if (word < 0 || word + words > seg.length / 8) throw new CapnpError(`object of ${words} words at word ${word} runs outside segment ${segment} (${seg.length / 8} words)`);
  }

  /**
   * Follows the pointer stored at `at`: undefined for a null pointer, a
   * StructReader or a ListReader otherwise. Far pointers are resolved here.
   */
  readPointer(at: Location, depth: number): StructReader | ListReader | undefined {
    if (depth > MAX_DEPTH) throw new CapnpError(`pointers nested deeper than ${MAX_DEPTH}`);
    this.visit(1);
    const p = this.#word(at);
    if (p === 0n) return undefined;
    const kind = Number(p & 3n);
    if (kind === 2) return this.#far(p, depth);
    // the offset counts words from the end of the pointer
    const offset = Number(BigInt.asIntN(30, (p >> 2n) & 0x3fffffffn));
    return this.#object(p, at.segment, at.word + 1 + offset, depth);
  }

  #far(p: bigint, depth: number): StructReader | ListReader | undefined {
    const double = (p & 4n) !== 0n;
    const pad = { segment: Number(p >> 32n), word: Number((p >> 3n) & 0x1fffffffn) };
    if (!double) return this.readPointer(pad, depth + 1);
    // a double landing pad: a far pointer to the content, then a tag describing it
    const landing = this.#word(pad);
    const tag = this.#word({ segment: pad.segment, word: pad.word + 1 });
    if ((landing & 7n) !== 2n) throw new CapnpError('a double-far landing pad does not start with a far pointer');
    const kind = Number(tag & 3n);
    if (kind === 2) throw new CapnpError('the tag of a double-far landing pad is another far pointer');
    return this.#object(tag, Number(landing >> 32n), Number((landing >> 3n) & 0x1fffffffn), depth);
  }

  /** A struct or list whose content starts at `word` of `segment`, described by pointer `p`. */
  #object(p: bigint, segment: number, word: number, depth: number): StructReader | ListReader {
    const kind = Number(p & 3n);
    if (kind === 0) {
      const dataWords = Number((p >> 32n) & 0xffffn);
      const ptrCount = Number((p >> 48n) & 0xffffn);
      this.#checkRange(segment, word, dataWords + ptrCount);
      this.visit(dataWords + ptrCount);
      return new StructReader(this, segment, word, dataWords * 8, ptrCount, depth + 1);
    }
    if (kind === 1) {
      const elementSize = Number((p >> 32n) & 7n);
      const count = Number(p >> 35n);
      if (elementSize === 7) {
        // composite: `count` is the words after the tag; the tag gives the element count and size
        this.#checkRange(segment, word, 1 + count);
        const tag = this.#word({ segment, word });
        if ((tag & 3n) !== 0n) throw new CapnpError('the tag of a composite list is not struct-shaped');
        const elements = Number(BigInt.asIntN(30, (tag >> 2n) & 0x3fffffffn));
        const dataWords = Number((tag >> 32n) & 0xffffn);
        const ptrCount = Number((tag >> 48n) & 0xffffn);
        if (elements < 0 || elements * (dataWords + ptrCount) > count) throw new CapnpError(`a composite list of ${elements} elements of ${dataWords + ptrCount} words does not fit its ${count} words`);
        this.visit(count);
        return new ListReader(this, segment, word + 1, elementSize, elements, dataWords, ptrCount, depth + 1);
      }
      const bits = [0, 1, 8, 16, 32, 64, 64, 0][elementSize];
      const words = Math.ceil((count * bits) / 64);
      this.#checkRange(segment, word, words);
      this.visit(words);
      return new ListReader(this, segment, word, elementSize, count, 0, 0, depth + 1);
    }
    throw new CapnpError('a capability pointer where data was expected');
  }
}

export class StructReader {
  readonly #msg: CapnpMessage;
  readonly #segment: number;
  readonly #word: number;
  readonly #dataBytes: number;
  readonly #ptrCount: number;
  readonly #depth: number;

  constructor(msg: CapnpMessage, segment: number, word: number, dataBytes: number, ptrCount: number, depth: number) {
    this.#msg = msg;
    this.#segment = segment;
    this.#word = word;
    this.#dataBytes = dataBytes;
    this.#ptrCount = ptrCount;
    this.#depth = depth;
  }

  #data(): Buffer {
    const start = this.#word * 8;
    return this.#msg.segments[this.#segment].subarray(start, start + this.#dataBytes);
  }

  /** Fields past the end of the data section read as 0 (a struct written by an older schema). */
  uint16(byte: number): number {
    return byte + 2 <= this.#dataBytes ? this.#data().readUInt16LE(byte) : 0;
  }

  uint32(byte: number): number {
    return byte + 4 <= this.#dataBytes ? this.#data().readUInt32LE(byte) : 0;
  }

  uint64(byte: number): bigint {
    return byte + 8 <= this.#dataBytes ? this.#data().readBigUInt64LE(byte) : 0n;
  }

  /** A signed 64-bit field; Cap'n Proto stores a field XOR its schema default. */
  int64(byte: number, defaultValue = 0n): bigint {
    return BigInt.asIntN(64, this.uint64(byte) ^ BigInt.asUintN(64, defaultValue));
  }

  pointer(index: number): StructReader | ListReader | undefined {
    if (index >= this.#ptrCount) return undefined;
    return this.#msg.readPointer({ segment: this.#segment, word: this.#word + this.#dataBytes / 8 + index }, this.#depth);
  }

  struct(index: number): StructReader | undefined {
    const p = this.pointer(index);
    if (p === undefined || p instanceof StructReader) return p;
    throw new CapnpError(`pointer ${index} is a list, a struct was expected`);
  }

  list(index: number): ListReader | undefined {
    const p = this.pointer(index);
    if (p === undefined || p instanceof ListReader) return p;
    throw new CapnpError(`pointer ${index} is a struct, a list was expected`);
  }

  /** A Data field: the bytes (a copy), or undefined when null. */
  data(index: number): Buffer | undefined {
    return this.list(index)?.bytes();
  }

  /** A Text field without its NUL terminator, as bytes; undefined when null. */
  textBytes(index: number): Buffer | undefined {
    const b = this.list(index)?.bytes();
    if (b === undefined) return undefined;
    if (b.length === 0 || b[b.length - 1] !== 0) throw new CapnpError(`text field ${index} lacks its NUL terminator`);
    return b.subarray(0, b.length - 1);
  }

  text(index: number): string | undefined {
    return this.textBytes(index)?.toString('utf8');
  }
}

export class ListReader {
  readonly length: number;
  readonly #msg: CapnpMessage;
  readonly #segment: number;
  readonly #word: number;
  readonly #elementSize: number;
  readonly #dataWords: number;
  readonly #ptrCount: number;
  readonly #depth: number;

  constructor(msg: CapnpMessage, segment: number, word: number, elementSize: number, length: number, dataWords: number, ptrCount: number, depth: number) {
    this.#msg = msg;
    this.#segment = segment;
    this.#word = word;
    this.#elementSize = elementSize;
    this.length = length;
    this.#dataWords = dataWords;
    this.#ptrCount = ptrCount;
    this.#depth = depth;
  }

  /** A List(UInt8) (Text, Data) as a copy of its bytes. */
  bytes(): Buffer {
    if (this.#elementSize !== 2) throw new CapnpError(`a list of element size code ${this.#elementSize} where bytes were expected`);
    const start = this.#word * 8;
    return Buffer.from(this.#msg.segments[this.#segment].subarray(start, start + this.length));
  }

  /** Element i of a list of structs (composite encoding). */
  struct(i: number): StructReader {
    if (this.#elementSize !== 7) throw new CapnpError(`a list of element size code ${this.#elementSize} where structs were expected`);
    if (i < 0 || i >= this.length) throw new CapnpError(`list index ${i} outside 0..${this.length - 1}`);
    const stride = this.#dataWords + this.#ptrCount;
    this.#msg.visit(stride);
    return new StructReader(this.#msg, this.#segment, this.#word + i * stride, this.#dataWords * 8, this.#ptrCount, this.#depth);
  }

  *structs(): Generator<StructReader> {
    for (let i = 0; i < this.length; i++) yield this.struct(i);
  }
}
