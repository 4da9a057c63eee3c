import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setLongTimeout } from '../../src/util/long-timer.js';

test('a delay beyond 2^31-1 ms does not fire early (Node would fire it after 1 ms)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  let fired = 0;
  const ms = 999_999_999 * 1000; // a 5.0 Session Expiry Interval of 999999999 s
  setLongTimeout(() => fired++, ms);
  t.mock.timers.tick(0x7fffffff);
  assert.equal(fired, 0);
  t.mock.timers.tick(ms - 0x7fffffff - 1);
  assert.equal(fired, 0);
  t.mock.timers.tick(1);
  assert.equal(fired, 1);
});

test('short delays fire once, and cancel stops them', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  let fired = 0;
  setLongTimeout(() => fired++, 50);
  const c = setLongTimeout(() => fired++, 60);
  c.cancel();
  t.mock.timers.tick(100);
  assert.equal(fired, 1);
});
