/**
 * A Mosquitto-compatible ACL file (mosquitto.conf(5) `acl_file`):
 *
 *   # lines before any `user` line apply to anonymous clients
 *   topic read $SYS/#
 *   user alice
 *   topic readwrite sensors/#
 *   topic deny sensors/secret
 *   pattern write devices/%c/#        (all clients; %c = client id, %u = username)
 *
 * Access is `read`, `write`, `readwrite` (the default) or `deny`. With an ACL in force anything
 * not granted is refused; a matching `deny` wins over any grant (Mosquitto 2).
 *
 * Checks run on routing keys of the topic exchange (MQTT `/` ⇄ `.` swapped, `+` → `*`), so the
 * same rules hold for an AMQP publish to `amq.topic`, as RabbitMQ's topic permissions do.
 */
import { readFileSync } from 'node:fs';

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

interface Rule {
  access: AclAccess;
  /** The MQTT topic filter as written (may hold %u / %c for patterns). */
  filter: string;
  pattern: boolean;
}

export interface AclSubject {
  readonly username: string | undefined;
  readonly clientId: string;
}

export class AclParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'AclParseError';
  }
}

const ACCESS = new Set<string>(['read', 'write', 'readwrite', 'deny']);

export class Acl {
  /** The exchange whose routing keys are MQTT topics; publishes elsewhere are not topic-checked. */
  topicExchange = 'amq.topic';
  private readonly anonymous: Rule[] = [];
  private readonly byUser = new Map<string, Rule[]>();
  private readonly patterns: Rule[] = [];

  static fromFile(path: string): Acl {
    return Acl.parse(readFileSync(path, 'utf8'), path);
  }

  static parse(text: string, source = 'acl'): Acl {
    const acl = new Acl();
    let current: Rule[] = acl.anonymous;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const sp = line.indexOf(' ');
      const word = sp < 0 ? line : line.slice(0, sp);
      const rest = sp < 0 ? '' : line.slice(sp + 1).trim();
      if (word === 'user') {
        if (rest === '') throw new AclParseError(source, i + 1, 'user needs a name');
        let rules = acl.byUser.get(rest);
        if (!rules) acl.byUser.set(rest, (rules = []));
        current = rules;
      } else if (word === 'topic' || word === 'pattern') {
        let access: AclAccess = 'readwrite';
        let filter = rest;
        const sp2 = rest.indexOf(' ');
        if (sp2 > 0 && ACCESS.has(rest.slice(0, sp2))) {
          access = rest.slice(0, sp2) as AclAccess;
          filter = rest.slice(sp2 + 1).trim();
        }
        if (filter === '') throw new AclParseError(source, i + 1, `${word} needs a topic`);
        const rule: Rule = { access, filter, pattern: word === 'pattern' };
        (word === 'pattern' ? acl.patterns : current).push(rule);
      } else {
        throw new AclParseError(source, i + 1, `unknown directive ${JSON.stringify(word)}`);
      }
    }
    return acl;
  }

  /** May `who` publish to the routing key `key` (AccessControl)? */
  canPublish(who: AclSubject, exchange: string, key: string): boolean {
    return exchange !== this.topicExchange || this.check(who, key, 'write', keyMatches);
  }

  /** May `who` subscribe with `bindingKey`: a read grant must cover every topic it can match. */
  canSubscribe(who: AclSubject, exchange: string, bindingKey: string): boolean {
    return exchange !== this.topicExchange || this.check(who, bindingKey, 'read', keyCovers);
  }

  private check(
    who: AclSubject,
    key: string,
    want: 'read' | 'write',
    match: (rule: string[], key: string[]) => boolean,
  ): boolean {
    const words = key.split('.');
    const rules = who.username === undefined ? this.anonymous : (this.byUser.get(who.username) ?? []);
    let granted = false;
    for (const set of [rules, this.patterns]) {
      for (const r of set) {
        const filter = r.pattern ? substitute(r.filter, who) : r.filter;
        if (filter === undefined) continue;
        const ruleWords = filterToKey(filter).split('.');
        if (r.access === 'deny') {
          if (match(ruleWords, words)) return false;
        } else if (!granted && (r.access === 'readwrite' || r.access === want) && match(ruleWords, words)) {
          granted = true;
        }
      }
    }
    return granted;
  }
}

/** %u / %c in a pattern; a client without a username matches no %u pattern (Mosquitto). */
function substitute(filter: string, who: AclSubject): string | undefined {
  if (filter.includes('%u') && who.username === undefined) return undefined;
  return filter.replaceAll('%u', who.username ?? '').replaceAll('%c', who.clientId);
}

function filterToKey(filter: string): string {
  return filter
    .split('/')
    .map((l) => (l === '+' ? '*' : l.replaceAll('.', '/')))
    .join('.');
}

/** Does the binding key `rule` match the routing key `key` (topic-exchange rules)? */
export function keyMatches(rule: string[], key: string[], ri = 0, ki = 0): boolean {
  for (;;) {
    if (ri === rule.length) return ki === key.length;
    const w = rule[ri]!;
    if (w === '#') {
      for (let k = ki; k <= key.length; k++) if (keyMatches(rule, key, ri + 1, k)) return true;
      return false;
    }
    if (ki === key.length) return false;
    if (w !== '*' && w !== key[ki]) return false;
    ri++;
    ki++;
  }
}

/**
 * Does the binding key `rule` cover every routing key the binding key `sub` can match?
 * (Mosquitto's mosquitto_sub_matches_acl: `+` in the subscription needs `+` or `#` in the rule,
 * `#` needs `#`.)
 */
export function keyCovers(rule: string[], sub: string[], ri = 0, si = 0): boolean {
  for (;;) {
    if (ri === rule.length) return si === sub.length;
    const w = rule[ri]!;
    if (w === '#') return true;
    if (si === sub.length) return false;
    const s = sub[si]!;
    if (s === '#') return false;
    if (w === '*') {
      // '+' covers one level, literal or '+'.
    } else if (s === '*' || w !== s) return false;
    ri++;
    si++;
  }
}
