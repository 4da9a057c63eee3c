/**
 * Wills waiting out their Will Delay Interval [MQTT-3.1.3-9] survive a broker restart: they fire
 * when their time comes, or at once when it passed while the broker was down.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'braid-will-'));
  dirs.push(d);
  return d;
}

const persistent = (dir: string) => startBroker({ storage: { persistence: true, dataDir: dir } });

async function connect(tb: TestBroker, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(tb.url, { protocolVersion: 5, reconnectPeriod: 0, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** Drops the client's socket without DISCONNECT, so the broker treats the will as due. */
function dropAbruptly(c: mqtt.MqttClient): void {
  (c as unknown as { stream: { destroy(): void } }).stream.destroy();
  c.end(true);
}

describe('delayed wills across a restart [MQTT-3.1.3-9]', () => {
  for (const session of ['persistent', 'clean'] as const) {
    it(`a pending will of a ${session} session is published after the restart`, async () => {
      const dir = dataDir();
      let tb = await persistent(dir);
      const client = await connect(tb, {
        clientId: `will-${session}`,
        clean: session === 'clean',
        properties: session === 'persistent' ? { sessionExpiryInterval: 3600 } : {},
        will: {
          topic: `wills/${session}`,
          payload: Buffer.from('gone'),
          qos: 1,
          retain: true,
          properties: { willDelayInterval: 1 },
        },
      });
      dropAbruptly(client);
      // Wait until the broker has seen the drop (the will is then pending), then stop it.
      await new Promise((r) => setTimeout(r, 200));
      await tb.stop();
      tb = await persistent(dir);
      try {
        // The will is retained, so a subscriber arriving after it fired still gets it.
        const sub = await connect(tb, { clientId: `watcher-${session}` });
        const got = new Promise<Buffer>((resolve) => sub.on('message', (_t, payload) => resolve(payload)));
        await sub.subscribeAsync(`wills/${session}`, { qos: 1 });
        const payload = await got;
        assert.equal(payload.toString(), 'gone');
        await sub.endAsync();
      } finally {
        await tb.stop();
      }
    });
  }
});
