// The emulator's structured log: one JSON object per connection event and per request, through one
// injected function. Every line passes through the shared redaction, so no key or signature is printed.
import { redact } from '../protocol/redact.js';

export interface EmulatorLogEntry {
  /** What happened: `connection`, `connack`, `request`, `response`, `close`, `drop`, `listening`... */
  event: string;
  [field: string]: unknown;
}

/** Receives entries already redacted. */
export type EmulatorLogger = (entry: EmulatorLogEntry) => void;

/** The library's default: an emulator embedded in tests says nothing. */
export const silentLogger: EmulatorLogger = () => {};

/** JSON lines (with a timestamp) on a writable stream: what the CLI writes to stderr. */
export function jsonLinesLogger(stream: { write(text: string): unknown }): EmulatorLogger {
  return (entry) => {
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  };
}

/** Wraps a logger so every entry is scrubbed of secrets (known values and recognisable patterns). */
export function redactingLogger(logger: EmulatorLogger, secrets: () => Iterable<string>): EmulatorLogger {
  if (logger === silentLogger) return logger;
  return (entry) => {
    const scrubbed = redact(JSON.stringify(entry), secrets());
    try {
      logger(JSON.parse(scrubbed) as EmulatorLogEntry);
    } catch {
      // A replacement broke the JSON (it cannot for the patterns we know): print nothing rather than a secret.
      logger({ event: entry.event, note: 'entry withheld: redaction failed' });
    }
  };
}
