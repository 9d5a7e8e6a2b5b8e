// The HTTP client that calls custom allocation webhooks: one POST per registration, JSON in and out,
// bounded in time and size. Outbound I/O only (no listener); startEmulator gives it to the registrar as an
// AllocationWebhookCaller, so the registrar itself stays free of the network.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AllocationWebhookCaller, CustomAllocationRequest, WebhookReply } from './custom-allocation.js';

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** A larger answer is cut off and counts as garbage: an allocation answer is a few hundred bytes. */
const MAX_ANSWER_BYTES = 256 * 1024;

export interface AllocationWebhookOptions {
  /** No answer within this time fails the registration (400207); 10 s by default. */
  timeoutMs?: number;
  /** https: webhooks are trusted with these CA certificates (PEM) instead of Node's defaults. */
  ca?: string | string[] | undefined;
}

export interface AllocationWebhook {
  call: AllocationWebhookCaller;
  /** Ends every call in flight (answered as unreachable): the emulator is stopping. */
  close(): void;
}

export function allocationWebhook(options: AllocationWebhookOptions = {}): AllocationWebhook {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const inFlight = new Set<() => void>();
  let closed = false;

  const call = (webhookUrl: string, body: CustomAllocationRequest): Promise<WebhookReply> =>
    new Promise<WebhookReply>((resolve) => {
      if (closed) {
        resolve({ kind: 'unreachable', reason: 'the emulator is stopping' });
        return;
      }
      let settled = false;
      const settle = (reply: WebhookReply): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        inFlight.delete(stop);
        request.destroy();
        resolve(reply);
      };
      const stop = () => settle({ kind: 'unreachable', reason: 'the emulator is stopping' });
      const payload = Buffer.from(JSON.stringify(body));
      const url = new URL(webhookUrl);
      const requestOptions = {
        method: 'POST',
        agent: false as const,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          accept: 'application/json',
          'content-length': payload.length,
        },
      };
      const request =
        url.protocol === 'https:'
          ? httpsRequest(
              url,
              options.ca === undefined ? requestOptions : { ...requestOptions, ca: options.ca },
            )
          : httpRequest(url, requestOptions);
      const timer = setTimeout(() => settle({ kind: 'timedOut', timeoutMs }), timeoutMs);
      inFlight.add(stop);
      request.on('error', (error) => settle({ kind: 'unreachable', reason: error.message }));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            settle({ kind: 'answered', statusCode: response.statusCode ?? 0, body: '' });
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () =>
          settle({
            kind: 'answered',
            statusCode: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', (error) => settle({ kind: 'unreachable', reason: error.message }));
      });
      request.end(payload);
    });

  return {
    call,
    close() {
      closed = true;
      for (const stop of [...inFlight]) stop();
    },
  };
}
