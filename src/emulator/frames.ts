// Splits an MQTT byte stream into whole packets before they reach the parser, so a packet larger than
// the limit is refused from its fixed header, before its body is buffered.

export type FrameResult =
  | { kind: 'frames'; frames: Buffer[] }
  | { kind: 'tooLarge'; remainingLength: number }
  | { kind: 'malformed'; reason: string };

export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPacketBytes: number) {}

  /** Appends bytes and returns the packets now complete (possibly none). */
  push(chunk: Buffer): FrameResult {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      const header = readFixedHeader(this.pending);
      if (header === 'incomplete') break;
      if (header === 'malformed')
        return { kind: 'malformed', reason: 'the remaining length is longer than 4 bytes' };
      const total = header.headerLength + header.remainingLength;
      if (total > this.maxPacketBytes) return { kind: 'tooLarge', remainingLength: header.remainingLength };
      if (this.pending.length < total) break;
      frames.push(this.pending.subarray(0, total));
      this.pending = this.pending.subarray(total);
    }
    return { kind: 'frames', frames };
  }
}

/** The fixed header: a type byte, then the remaining length in 1-4 bytes of 7 bits each. */
function readFixedHeader(
  buffer: Buffer,
): { headerLength: number; remainingLength: number } | 'incomplete' | 'malformed' {
  let remainingLength = 0;
  let multiplier = 1;
  for (let index = 1; index <= 4; index++) {
    const byte = buffer[index];
    if (byte === undefined) return 'incomplete';
    remainingLength += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { headerLength: index + 1, remainingLength };
    multiplier *= 128;
  }
  return 'malformed';
}
