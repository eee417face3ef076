// Failed logins are counted per client address and per address and user name, never per user
// name alone: a stranger's wrong passwords then slow down and stop the stranger, not the
// engineer whose name they typed (Node-RED's own count per user name let six anonymous tries
// lock `admin` out for ten minutes, and every further try extend it). A refused try is not
// counted, so waiting always ends the refusal. Time comes from the caller.

export interface ThrottleLimits {
  /** Failures counted over this window. */
  windowMs: number;
  /** Failures from one address (any user names) before that address is refused. */
  perAddress: number;
  /** Failures from one address for one user name before that pair is refused. */
  perAddressAndUser: number;
  /** Extra wait per earlier failure from the address before a failure is answered, and its cap. */
  delayStepMs: number;
  maxDelayMs: number;
  /** Addresses and pairs remembered at most; the oldest are forgotten first. */
  maxEntries: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = {
  windowMs: 15 * 60 * 1000,
  perAddress: 20,
  perAddressAndUser: 5,
  delayStepMs: 250,
  maxDelayMs: 3000,
  maxEntries: 10000,
};

export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterMs: number; reason: string };

export class LoginThrottle {
  private readonly byAddress = new Map<string, number[]>();
  private readonly byPair = new Map<string, number[]>();

  constructor(private readonly limits: ThrottleLimits = DEFAULT_THROTTLE) {}

  /** Whether a login from `address` for `username` may be tried now. */
  check(address: string, username: string, now: number): ThrottleDecision {
    const fromAddress = this.recent(this.byAddress, address, now);
    if (fromAddress.length >= this.limits.perAddress) {
      return {
        allowed: false,
        retryAfterMs: this.until(fromAddress, this.limits.perAddress, now),
        reason: 'too many failed logins from this address',
      };
    }
    const forPair = this.recent(this.byPair, pairKey(address, username), now);
    if (forPair.length >= this.limits.perAddressAndUser) {
      return {
        allowed: false,
        retryAfterMs: this.until(forPair, this.limits.perAddressAndUser, now),
        reason: `too many failed logins for ${username} from this address`,
      };
    }
    return { allowed: true };
  }

  /** Records a failure; returns how long to wait before answering it (slows guessing down). */
  failed(address: string, username: string, now: number): number {
    const earlier = this.recent(this.byAddress, address, now).length;
    this.push(this.byAddress, address, now);
    this.push(this.byPair, pairKey(address, username), now);
    return Math.min(this.limits.maxDelayMs, earlier * this.limits.delayStepMs);
  }

  /** A right password from this address forgets that pair's failures. */
  succeeded(address: string, username: string): void {
    this.byPair.delete(pairKey(address, username));
  }

  private recent(map: Map<string, number[]>, key: string, now: number): number[] {
    const times = map.get(key);
    if (!times) return [];
    const since = now - this.limits.windowMs;
    const kept = times.filter((t) => t > since);
    if (kept.length === 0) map.delete(key);
    else map.set(key, kept);
    return kept;
  }

  /** When the count in `times` drops below `limit`: the (limit)-th newest failure leaves the window. */
  private until(times: number[], limit: number, now: number): number {
    const pivot = times[times.length - limit];
    return Math.max(1000, pivot + this.limits.windowMs - now);
  }

  private push(map: Map<string, number[]>, key: string, now: number): void {
    const times = map.get(key) ?? [];
    times.push(now);
    // Re-inserting keeps the map in order of last failure, so the first key is the stalest.
    map.delete(key);
    map.set(key, times);
    while (map.size > this.limits.maxEntries) map.delete(map.keys().next().value as string);
  }
}

function pairKey(address: string, username: string): string {
  return `${address}\u0000${username.toLowerCase()}`;
}
