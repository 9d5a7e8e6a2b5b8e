// `dps-mqtt fleet --out FILE`: one JSON line per device, never half-written. Only complete lines are
// buffered and written, and the file is fsynced when closed, so a reader (or a crash, or Ctrl+C) sees
// whole lines only. With --include-keys the file holds secrets and is made owner-only (0600).
import { closeSync, fchmodSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { UsageError } from './args.js';

/** Written when this much is buffered, or on flush() (the CLI flushes with every progress tick). */
const FLUSH_BYTES = 64 * 1024;

export class ResultsFile {
  private buffered: string[] = [];
  private bufferedBytes = 0;
  lines = 0;

  private constructor(
    private readonly fd: number,
    readonly path: string,
  ) {}

  /** Creates or truncates `path`; `secret` makes it 0600 (also when it existed with a wider mode). */
  static open(path: string, options: { secret: boolean }): ResultsFile {
    let fd: number;
    try {
      fd = openSync(path, 'w', options.secret ? 0o600 : 0o644);
    } catch (error) {
      const reason = (error as { code?: unknown }).code ?? (error as Error).message;
      throw new UsageError(`--out: cannot write ${JSON.stringify(path)} (${String(reason)})`, '--out');
    }
    if (options.secret) fchmodSync(fd, 0o600);
    return new ResultsFile(fd, path);
  }

  /** Adds one line (JSON text without its newline). */
  append(line: string): void {
    const text = `${line}\n`;
    this.buffered.push(text);
    this.bufferedBytes += text.length;
    this.lines += 1;
    if (this.bufferedBytes >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.buffered.length === 0) return;
    const bytes = Buffer.from(this.buffered.join(''));
    this.buffered = [];
    this.bufferedBytes = 0;
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(this.fd, bytes, offset);
  }

  close(): void {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}
