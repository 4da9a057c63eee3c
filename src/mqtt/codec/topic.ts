/**
 * Topic Name and Topic Filter syntax (5.0 §4.7, 3.1.1 §4.7). The decoder only checks that
 * strings are valid UTF-8 and that a PUBLISH topic has no wildcard; filter syntax is checked by
 * the SUBSCRIBE handler with these helpers, because a 5.0 server answers a bad filter with a
 * SUBACK 0x8F rather than by closing the connection.
 */

const PLUS = 0x2b; // '+'
const HASH = 0x23; // '#'
const SLASH = 0x2f; // '/'

/**
 * A Topic Name as carried by PUBLISH (or a Will Topic): at least one character [MQTT-4.7.3-1],
 * no wildcard [MQTT-3.3.2-2], no U+0000 [MQTT-4.7.3-2].
 */
export function validTopicName(t: string): boolean {
  const n = t.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c === PLUS || c === HASH || c === 0) return false;
  }
  return true;
}

/**
 * A Topic Filter: at least one character [MQTT-4.7.3-1], no U+0000 [MQTT-4.7.3-2], `#` only as
 * the whole last level, `+` only as a whole level (5.0 [MQTT-4.7.1-1] and [MQTT-4.7.1-2];
 * 3.1.1 numbers them [MQTT-4.7.1-2] and [MQTT-4.7.1-3]). Shared subscription syntax
 * (`$share/...`) is the subscribe handler's business.
 */
export function validTopicFilter(f: string): boolean {
  const n = f.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = f.charCodeAt(i);
    if (c === 0) return false;
    if (c === HASH) {
      // Alone in its level, and that level is the last one.
      return i === n - 1 && (i === 0 || f.charCodeAt(i - 1) === SLASH);
    }
    if (c === PLUS) {
      if (i > 0 && f.charCodeAt(i - 1) !== SLASH) return false;
      if (i < n - 1 && f.charCodeAt(i + 1) !== SLASH) return false;
    }
  }
  return true;
}
