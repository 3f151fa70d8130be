// The RTCConfiguration (ICE servers) the operator set, fetched from /api/rtc-config and
// fetched again before its TURN credentials expire.

// TURN credentials expire (their username starts with the expiry, in unix seconds): the
// page fetches new ones once this share of their remaining life has passed, measured on
// the server's clock (the response's Date header), as the relay measures it. Never sooner
// than RETRY_MS, which is also the wait after a failed fetch; setTimeout takes at most
// 2^31-1 ms.
const REFRESH_AT = 0.8;
const RETRY_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Hands `apply` each RTCConfiguration fetched, and keeps fetching them while needed. */
export class RtcConfigSource {
  #apply;
  #timer = null;

  constructor(apply) {
    this.#apply = apply;
  }

  /** Fetches a fresh configuration now (a failure keeps the last one), and schedules the
   * next one before its TURN credentials expire, or a retry if this one failed. */
  async refresh() {
    clearTimeout(this.#timer);
    const loaded = await load();
    let wait = RETRY_MS;
    if (loaded) {
      this.#apply(loaded.config);
      const left = credentialsLeftMs(loaded.config, loaded.serverTime);
      if (left === null) return;
      wait = Math.max(left * REFRESH_AT, RETRY_MS);
    }
    this.#timer = setTimeout(() => this.refresh(), Math.min(wait, MAX_TIMER_MS));
  }
}

/** The configuration, and the server's time when it was made; null if it cannot be had. */
async function load() {
  try {
    const res = await fetch('/api/rtc-config', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const config = await res.json();
    if (!Array.isArray(config?.iceServers)) throw new Error('no iceServers in it');
    return { config, serverTime: Date.parse(res.headers.get('date')) || Date.now() };
  } catch (err) {
    console.warn('meshchat: could not fetch the RTC configuration, keeping the last one:', err.message);
    return null;
  }
}

/** Milliseconds from `now` until the first TURN credentials of `config` expire; null if
 * none do. */
function credentialsLeftMs(config, now) {
  const expiries = (config.iceServers ?? [])
    .map((server) => Number(String(server.username ?? '').split(':')[0]))
    .filter((t) => Number.isInteger(t) && t > 1e9);
  return expiries.length ? Math.min(...expiries) * 1000 - now : null;
}
