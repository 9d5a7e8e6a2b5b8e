// Step 5b, the clock: the server's Date header (from the WebSocket upgrade) against this machine's clock.
// A SAS token expires an hour after this machine's "now": a skew larger than that explains refusals.
import { DEFAULT_SAS_LIFETIME_SECONDS } from '../protocol/sas.js';
import type { DiagnoseContext } from './context.js';
import type { StepOutcome } from './step.js';

/** Below this, clocks agree well enough for anything DPS checks. */
const TOLERATED_SKEW_MS = 5 * 60 * 1000;

export function describeDuration(ms: number): string {
  const minutes = Math.round(Math.abs(ms) / 60_000);
  if (minutes < 1) return `${Math.round(Math.abs(ms) / 1000)} s`;
  const hours = Math.floor(minutes / 60);
  return hours === 0 ? `${minutes} min` : `${hours} h ${minutes % 60} min`;
}

export function clockStep(context: DiagnoseContext, now: () => number = Date.now): StepOutcome {
  if (context.transport === 'mqtt') {
    return {
      status: 'skip',
      summary: 'MQTT over TLS carries no server time to compare with (--transport mqtt-ws does)',
    };
  }
  const serverMs = context.serverDate === undefined ? Number.NaN : Date.parse(context.serverDate);
  if (Number.isNaN(serverMs)) {
    return { status: 'skip', summary: 'the server sent no usable Date header' };
  }
  const localMs = now();
  // The Date header has whole seconds: a skew below that is noise.
  const skewMs = localMs - serverMs;
  const direction = skewMs > 0 ? 'ahead of' : 'behind';
  const details = {
    serverTime: new Date(serverMs).toISOString(),
    localTime: new Date(localMs).toISOString(),
    skewSeconds: Math.round(skewMs / 1000),
  };
  const skewText = `this machine's clock is ${describeDuration(skewMs)} ${direction} the server's (server ${details.serverTime}, here ${details.localTime})`;
  if (Math.abs(skewMs) <= TOLERATED_SKEW_MS) {
    return {
      status: 'ok',
      summary: `within ${describeDuration(Math.max(Math.abs(skewMs), 1000))} of the server's clock`,
      details,
    };
  }
  if (Math.abs(skewMs) <= DEFAULT_SAS_LIFETIME_SECONDS * 1000) {
    return {
      status: 'warn',
      summary: skewText,
      details,
      hint: 'set the clock (NTP): certificates and tokens are checked against it',
    };
  }
  const keys = context.credential !== 'x509';
  return {
    status: keys ? 'fail' : 'warn',
    summary: skewText,
    details,
    causes: keys
      ? [
          `the SAS token this machine signs is valid for ${DEFAULT_SAS_LIFETIME_SECONDS / 3600} h from its own clock: ` +
            (skewMs < 0
              ? 'to DPS it has already expired, so the connection is refused (CONNACK 5)'
              : 'to DPS it lives hours longer than intended, which DPS may refuse'),
        ]
      : ['certificate validity is judged against this clock: certificates may look expired or not yet valid'],
    hint: "set this machine's clock (NTP, or the device's RTC); DPS refuses credentials checked against a wrong time",
  };
}
