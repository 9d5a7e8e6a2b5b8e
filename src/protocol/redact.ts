// The one redaction function every log line, trace and error message passes through.
// Secrets: device and group keys, SAS signatures, private keys, proxy passwords.

const REDACTED = '<redacted>';

const PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // PEM private keys, whole blocks (also escaped as JSON with literal \n).
  [/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, `<redacted private key>`],
  // SAS signatures, raw or URL-encoded, in tokens and topic-like strings.
  [/\b(sig=)[^&\s"',;]+/gi, `$1${REDACTED}`],
  [/\b(sig%3D)[^&\s"',;%]+(%3D)*/gi, `$1${REDACTED}`],
  // Connection strings.
  [/\b(SharedAccessKey=)[^;\s"']+/gi, `$1${REDACTED}`],
  // HTTP Basic credentials (Proxy-Authorization, Authorization).
  [/\b((?:Proxy-)?Authorization:?\s*"?\s*Basic\s+)[A-Za-z0-9+/=]+/gi, `$1${REDACTED}`],
  // user:password@ in URLs.
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s/]+@/gi, `$1${REDACTED}@`],
  // JSON or key=value fields that hold secrets.
  [
    /(["']?(?:password|passphrase|primaryKey|secondaryKey|symmetricKey|groupKey|deviceKey|sharedAccessKey|sasToken|keyPem|privateKey)["']?\s*[:=]\s*["'])[^"']*(["'])/gi,
    `$1${REDACTED}$2`,
  ],
];

/**
 * Returns the text with every secret replaced. Known secret values (keys, passwords) can be passed
 * so they are scrubbed wherever they appear, also base64-decoded forms aside.
 */
export function redact(text: string, secrets: Iterable<string | undefined> = []): string {
  let result = text;
  for (const secret of secrets) {
    if (!secret || secret.length < 4) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      result = result.split(form).join(REDACTED);
    }
  }
  for (const [pattern, replacement] of PATTERNS) result = result.replace(pattern, replacement);
  return result;
}
