/**
 * Interop with Debian's mosquitto_pub / mosquitto_sub (package mosquitto-clients, which
 * .ci/run installs): QoS 0/1/2, retained messages, wills and the weather example of
 * ../shared/seeds/002_d63426611807300e.txt, over MQTT 3.1.1 and 5.0, against a real Braid.
 *
 * The clients run with -d, so their own debug lines show the packets they exchanged (the QoS
 * handshakes, the flags of each PUBLISH received, the QoS granted in the SUBACK); those lines
 * are read once a client has exited. When a subscriber is ready is told by the broker's
 * `subscribe` event. Every child process is killed when its test ends, and every wait is bounded.
 *
 * Without the binaries the tests are skipped, unless INTEROP_REQUIRED=1 (as in CI), where a
 * missing client is a failure.
 */
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { ChildRun, WAIT_MS } from '../helpers/process.js';

const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';
const MOSQUITTO_SUB = '/usr/bin/mosquitto_sub';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const installed = executable(MOSQUITTO_PUB) && executable(MOSQUITTO_SUB);
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? 'mosquitto-clients not installed' : false;

/** A mosquitto client process whose stdout and stderr are kept for assertions. */
class Client extends ChildRun {
  /**
   * @param subscribedEvent resolves when the broker reports this client's subscription. The
   *   clients' own debug lines cannot say so in time: their stdout is a pipe, so it is block-
   *   buffered and arrives only when they exit.
   */
  constructor(
    t: TestContext,
    bin: string,
    args: string[],
    private readonly subscribedEvent?: Promise<void>,
  ) {
    super(t, bin, args);
  }

  /** Waits until the broker has this client's subscription in place. */
  async subscribed(what: string, timeoutMs = WAIT_MS): Promise<void> {
    assert.ok(this.subscribedEvent, `${what}: not a subscriber`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.subscribedEvent.then(() => 'subscribed' as const),
      this.exited.then(() => 'exited' as const),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (r === 'exited') assert.fail(`${what}: the client exited before subscribing; it printed:\n${this.out}`);
    if (r === 'timeout') assert.fail(`${what}: no subscription within ${timeoutMs} ms`);
  }
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

for (const version of ['mqttv311', 'mqttv5'] as const) {
  describe(`mosquitto_pub / mosquitto_sub over ${version}`, { skip }, () => {
    let tb: TestBroker;
    let n = 0;
    /** A client id of its own for every process, so no two share a session. */
    const id = (role: string): string => `${role}-${version}-${++n}`;
    const common = (): string[] => ['-h', '127.0.0.1', '-p', String(tb.port), '-V', version];

    /** Resolves when the broker emits `subscribe` for `clientId` (registered before the spawn). */
    const subscribeEvent = (t: TestContext, clientId: string): Promise<void> =>
      new Promise((resolve) => {
        const listener = (_granted: unknown, client: { id?: string } | undefined) => {
          if (client?.id !== clientId) return;
          tb.broker.off('subscribe', listener);
          resolve();
        };
        tb.broker.on('subscribe', listener);
        t.after(() => tb.broker.off('subscribe', listener));
      });

    const sub = (t: TestContext, role: string, args: string[]): Client => {
      const clientId = id(role);
      const ready = subscribeEvent(t, clientId);
      return new Client(t, MOSQUITTO_SUB, [...common(), '-i', clientId, '-d', '-v', ...args], ready);
    };
    const pub = (t: TestContext, role: string, args: string[]): Client =>
      new Client(t, MOSQUITTO_PUB, [...common(), '-i', id(role), '-d', ...args]);

    before(async () => {
      if (!installed) {
        assert.fail(
          `INTEROP_REQUIRED=1 but ${MOSQUITTO_PUB} / ${MOSQUITTO_SUB} are missing (apt-get install mosquitto-clients)`,
        );
      }
      tb = await startBroker();
    });

    after(async () => {
      await tb?.stop();
    });

    for (const qos of [0, 1, 2] as const) {
      it(`QoS ${qos}: mosquitto_pub delivers to mosquitto_sub with the QoS handshake`, async (t) => {
        const topic = `interop/${version}/qos${qos}`;
        const payload = `hello at qos ${qos}`;
        const s = sub(t, 'sub', ['-t', topic, '-q', String(qos), '-C', '1', '-W', '10']);
        await s.subscribed('mosquitto_sub');

        const p = pub(t, 'pub', ['-t', topic, '-m', payload, '-q', String(qos)]);
        await p.success('mosquitto_pub');
        assert.match(p.out, /received CONNACK \(0\)/);
        if (qos === 1) assert.match(p.out, /received PUBACK/);
        if (qos === 2) {
          assert.match(p.out, /received PUBREC/);
          assert.match(p.out, /sending PUBREL/);
          assert.match(p.out, /received PUBCOMP/);
        }

        await s.success('mosquitto_sub');
        assert.match(s.out, new RegExp(`Subscribed \\(mid: \\d+\\): ${qos}$`, 'm'), 'granted QoS in the SUBACK');
        assert.match(s.out, new RegExp(`received PUBLISH \\(d0, q${qos}, r0, m\\d+, '${escapeRe(topic)}'`));
        assert.match(s.out, new RegExp(`^${escapeRe(topic)} ${escapeRe(payload)}$`, 'm'));
        if (qos === 2) {
          assert.match(s.out, /sending PUBREC/);
          assert.match(s.out, /received PUBREL/);
          assert.match(s.out, /sending PUBCOMP/);
        }
      });
    }

    it('retained: a later subscriber gets the retained message with the retain flag; an empty one clears it', async (t) => {
      const topic = `interop/${version}/retained`;
      await pub(t, 'pub-retain', ['-t', topic, '-m', 'last value', '-q', '1', '-r']).success('mosquitto_pub -r');

      const late = sub(t, 'sub-late', ['-t', topic, '-q', '1', '-C', '1', '-W', '10']);
      await late.success('mosquitto_sub after the retained publish');
      assert.match(late.out, new RegExp(`received PUBLISH \\(d0, q1, r1, m\\d+, '${escapeRe(topic)}'`));
      assert.match(late.out, new RegExp(`^${escapeRe(topic)} last value$`, 'm'));

      await pub(t, 'pub-clear', ['-t', topic, '-n', '-q', '1', '-r']).success('mosquitto_pub -r -n');

      // After the clear, the first message a new subscriber sees is one published after its
      // SUBACK: a retained message would have come first [MQTT-3.3.1-6].
      const afterClear = sub(t, 'sub-after-clear', ['-t', topic, '-q', '1', '-C', '1', '-W', '10']);
      await afterClear.subscribed('subscriber after the clear');
      await pub(t, 'pub-marker', ['-t', topic, '-m', 'marker', '-q', '1']).success('mosquitto_pub marker');
      await afterClear.success('mosquitto_sub after the clear');
      assert.match(afterClear.out, new RegExp(`^${escapeRe(topic)} marker$`, 'm'));
      assert.doesNotMatch(afterClear.out, /last value/);
      assert.doesNotMatch(afterClear.out, /r1, m/);
    });

    it('will: a client killed with SIGKILL has its will (QoS 1) published to a subscriber', async (t) => {
      const willTopic = `interop/${version}/will`;
      const watcher = sub(t, 'sub-will', ['-t', willTopic, '-q', '1', '-C', '1', '-W', '10']);
      await watcher.subscribed('will watcher');

      const victim = sub(t, 'victim', [
        '-t',
        `interop/${version}/victim`,
        '--will-topic',
        willTopic,
        '--will-payload',
        'victim is gone',
        '--will-qos',
        '1',
      ]);
      await victim.subscribed('victim');
      assert.doesNotMatch(watcher.out, /victim is gone/, 'the will was published while the client was still there');
      victim.kill('SIGKILL');

      await watcher.success('will watcher');
      assert.match(watcher.out, new RegExp(`received PUBLISH \\(d0, q1, r0, m\\d+, '${escapeRe(willTopic)}'`));
      assert.match(watcher.out, new RegExp(`^${escapeRe(willTopic)} victim is gone$`, 'm'));
    });

    it('will with --will-retain: published as retained, so a later subscriber still gets it', async (t) => {
      const willTopic = `interop/${version}/will-retained`;
      const victim = sub(t, 'victim-r', [
        '-t',
        `interop/${version}/victim-r`,
        '--will-topic',
        willTopic,
        '--will-payload',
        'offline',
        '--will-qos',
        '1',
        '--will-retain',
      ]);
      await victim.subscribed('victim');
      // Heard live by a subscriber first, which also tells when the broker has handled the kill.
      const watcher = sub(t, 'sub-will-r', ['-t', willTopic, '-q', '1', '-C', '1', '-W', '10']);
      await watcher.subscribed('will watcher');
      victim.kill('SIGKILL');
      await watcher.success('will watcher');
      assert.match(watcher.out, new RegExp(`^${escapeRe(willTopic)} offline$`, 'm'));

      const late = sub(t, 'sub-will-late', ['-t', willTopic, '-q', '1', '-C', '1', '-W', '10']);
      await late.success('late subscriber');
      assert.match(late.out, new RegExp(`received PUBLISH \\(d0, q1, r1, m\\d+, '${escapeRe(willTopic)}'`));
      assert.match(late.out, new RegExp(`^${escapeRe(willTopic)} offline$`, 'm'));

      await pub(t, 'pub-clear-will', ['-t', willTopic, '-n', '-q', '1', '-r']).success('clearing the retained will');
    });

    it('weather example: subscribers of the topic and of /weather/+/temperature get {"temperature": 25.5}', async (t) => {
      const topic = '/weather/station01/temperature';
      const payload = '{"temperature": 25.5}';
      const exact = sub(t, 'dashboard', ['-t', topic, '-q', '1', '-C', '1', '-W', '10']);
      const wildcard = sub(t, 'dashboard-all', ['-t', '/weather/+/temperature', '-q', '1', '-C', '1', '-W', '10']);
      await exact.subscribed('exact subscriber');
      await wildcard.subscribed('wildcard subscriber');

      await pub(t, 'sensor', ['-t', topic, '-m', payload, '-q', '1']).success('sensor publish');

      await exact.success('exact subscriber');
      await wildcard.success('wildcard subscriber');
      const line = new RegExp(`^${escapeRe(topic)} ${escapeRe(payload)}$`, 'm');
      assert.match(exact.out, line);
      assert.match(wildcard.out, line);
    });
  });
}
