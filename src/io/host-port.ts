// Host names and IPv6 literals in the two forms the IO needs: bare for connect(), bracketed in host:port.

/** `host:port`, with brackets around an IPv6 literal: the form of a CONNECT target, a Host header, a message. */
export function hostPort(host: string, port: number): string {
  const bare = unbracket(host);
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** `[::1]` → `::1`: what connect() and the certificate check want. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
