import { equalPassword, verifyPasswordHash } from './passwords.js';

/** Who a connection is, once authenticated; shared by every protocol adapter. */
export interface Identity {
  /** undefined for an anonymous client. */
  readonly username: string | undefined;
  readonly vhost: string;
  readonly tags: readonly string[];
}

export interface UserEntry {
  name: string;
  password?: string;
  passwordHash?: string;
  tags?: string[];
  vhost?: string;
}

export interface UserDbOptions {
  allowAnonymous: boolean | 'loopback';
  users: readonly UserEntry[];
  /** The built-in guest/guest user, accepted from loopback only (RabbitMQ loopback_users). */
  guest: boolean;
  defaultVhost: string;
}

export type AuthResult =
  | { ok: true; identity: Identity }
  /** bad_credentials: unknown user or wrong password; not_authorized: known but not allowed here. */
  | { ok: false; reason: 'bad_credentials' | 'not_authorized'; detail: string };

/**
 * Users from the config. Lookups are constant-time in the password; a failed attempt is
 * answered by the adapter after a short delay so that guessing is slow.
 */
export class UserDb {
  private readonly users = new Map<string, UserEntry>();

  constructor(private readonly opts: UserDbOptions) {
    for (const u of opts.users) this.users.set(u.name, u);
  }

  authenticate(username: string | undefined, password: Buffer | undefined, fromLoopback: boolean): AuthResult {
    const vhost = this.opts.defaultVhost;
    if (username === undefined) {
      const allow = this.opts.allowAnonymous;
      if (allow === true || (allow === 'loopback' && fromLoopback)) {
        return { ok: true, identity: { username: undefined, vhost, tags: [] } };
      }
      return {
        ok: false,
        reason: 'not_authorized',
        detail:
          allow === 'loopback'
            ? 'anonymous clients are accepted from loopback only'
            : 'anonymous clients are not allowed',
      };
    }
    const entry = this.users.get(username);
    if (entry) {
      if (password === undefined) return { ok: false, reason: 'bad_credentials', detail: 'no password given' };
      const good = entry.passwordHash
        ? verifyPasswordHash(entry.passwordHash, password)
        : equalPassword(entry.password ?? '', password);
      if (!good) return { ok: false, reason: 'bad_credentials', detail: 'wrong password' };
      return { ok: true, identity: { username, vhost: entry.vhost ?? vhost, tags: entry.tags ?? [] } };
    }
    if (username === 'guest' && this.opts.guest) {
      if (password === undefined || !equalPassword('guest', password)) {
        return { ok: false, reason: 'bad_credentials', detail: 'wrong password' };
      }
      if (!fromLoopback)
        return { ok: false, reason: 'not_authorized', detail: 'user guest may connect from loopback only' };
      return { ok: true, identity: { username, vhost, tags: ['administrator'] } };
    }
    return { ok: false, reason: 'bad_credentials', detail: 'unknown user' };
  }
}
