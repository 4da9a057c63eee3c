import { createHash, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Password hashes in mosquitto_passwd's formats:
 *   `$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512 key (64 bytes)>` (Mosquitto 2 default)
 *   `$6$<base64 salt>$<base64 SHA-512(password ‖ salt)>` (Mosquitto 1.x)
 */
export function verifyPasswordHash(hash: string, password: Buffer): boolean {
  const parts = hash.split('$');
  if (parts[1] === '7' && parts.length === 5) {
    const iterations = Number(parts[2]);
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) return false;
    const salt = Buffer.from(parts[3]!, 'base64');
    const expected = Buffer.from(parts[4]!, 'base64');
    if (expected.length === 0) return false;
    const actual = pbkdf2Sync(password, salt, iterations, expected.length, 'sha512');
    return timingSafeEqual(actual, expected);
  }
  if (parts[1] === '6' && parts.length === 4) {
    const salt = Buffer.from(parts[2]!, 'base64');
    const expected = Buffer.from(parts[3]!, 'base64');
    const actual = createHash('sha512').update(password).update(salt).digest();
    return expected.length === actual.length && timingSafeEqual(actual, expected);
  }
  return false;
}

export function isPasswordHash(hash: string): boolean {
  return (
    /^\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(hash) || /^\$6\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(hash)
  );
}

/** Hashes like mosquitto_passwd 2.x: PBKDF2-SHA512, 101 iterations, 12-byte salt. */
export function hashPassword(password: string, iterations = 101): string {
  const salt = randomBytes(12);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Constant-time comparison of a plaintext config password. */
export function equalPassword(expected: string, given: Buffer): boolean {
  const e = createHash('sha256').update(expected, 'utf8').digest();
  const g = createHash('sha256').update(given).digest();
  return timingSafeEqual(e, g);
}
