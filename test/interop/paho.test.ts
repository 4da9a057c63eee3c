/**
 * Interop with Python paho-mqtt 1.6 (Debian python3-paho-mqtt, run by /usr/bin/python3, not
 * whatever python3 is first on PATH). Two scripts:
 *
 * 1. The seed snippet of ../shared/seeds/002_d63426611807300e.txt, unchanged except the host and
 *    port (the seed page lost its indentation; it is restored as Python needs it). The broker has
 *    the user the snippet logs in as (`auth.users`).
 *
 *    What paho 1.6.1 does with it: connect() writes CONNECT at once; publish() after
 *    loop_start() queues the QoS 0 PUBLISH for the network thread; loop_stop() makes that thread
 *    stop only once its output queue is empty (loop_forever checks `_thread_terminate` together
 *    with `len(self._out_packet) == 0`). So CONNECT and then PUBLISH always reach the broker and
 *    the message is delivered. Whether on_connect prints is a race instead: the thread may write
 *    the PUBLISH and stop before CONNACK arrives, and then nobody reads it. So this test asserts
 *    the delivery, that the broker accepted the login (its `clientReady` event, sent after a
 *    CONNACK 0x00), and that the script never printed a failure; the greeting is asserted by
 *    script 2, which waits for on_connect.
 *
 * 2. The same style with a wait for on_connect and wait_for_publish(): paho publishes at QoS 0
 *    and 1 to an mqtt.js subscriber, and subscribes to what mqtt.js publishes, over MQTT 3.1.1
 *    and 5.0.
 *
 * Without paho the tests are skipped, unless INTEROP_REQUIRED=1 (as in CI), where it is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { collect, connect, end, waitFor } from '../helpers/mqtt.js';
import { ChildRun, WAIT_MS } from '../helpers/process.js';

const PYTHON = '/usr/bin/python3';

function pahoInstalled(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import paho.mqtt'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

const installed = pahoInstalled();
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? 'python3-paho-mqtt not installed' : false;

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The seed snippet, word for word, with its indentation restored. */
const SEED_SNIPPET = `import paho.mqtt.client as mqtt
def on_connect(client, userdata, flags, rc):
    if rc == 0:
        print("Connected to MQTT Broker!")
    else:
        print("Failed to connect, return code %d\\n", rc)
client = mqtt.Client("python_publisher")
client.username_pw_set("user", "password")
client.on_connect = on_connect
client.connect("mqtt.example.com", 1883)
client.loop_start()
client.publish("/sensors/temp", '{"value": 22.1}')
client.loop_stop()
`;

/**
 * The seed's style, made deterministic: wait for on_connect, then publish and wait_for_publish,
 * or subscribe and wait for one message. Arguments: pub|sub, 4|5, port, topic, payload, qos.
 */
const WAITING_SCRIPT = `import sys
import threading
import paho.mqtt.client as mqtt

mode, version, port, topic, payload, qos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
connected = threading.Event()
subscribed = threading.Event()
received = threading.Event()

def on_connect(client, userdata, flags, rc, properties=None):
    if rc == 0:
        print("Connected to MQTT Broker!")
        connected.set()
    else:
        print("Failed to connect, return code %d\\n" % rc)

def on_subscribe(client, userdata, mid, granted, properties=None):
    print("SUBSCRIBED %s" % ",".join(str(getattr(g, "value", g)) for g in granted))
    subscribed.set()

def on_message(client, userdata, message):
    print("MESSAGE %s %d %s" % (message.topic, message.qos, message.payload.decode()))
    received.set()

protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
client = mqtt.Client("python_%s_v%s_q%d" % (mode, version, qos), protocol=protocol)
client.username_pw_set("user", "password")
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("127.0.0.1", port)
client.loop_start()
if not connected.wait(10):
    print("TIMEOUT waiting for CONNACK")
    sys.exit(2)
if mode == "pub":
    info = client.publish(topic, payload, qos=qos)
    info.wait_for_publish(10)
    print("PUBLISHED %s" % info.is_published())
    if not info.is_published():
        sys.exit(3)
else:
    client.subscribe(topic, qos=qos)
    if not received.wait(10):
        print("TIMEOUT waiting for a message")
        sys.exit(4)
client.disconnect()
client.loop_stop()
`;

/** A python process (unbuffered, so each line is seen when printed); killed when the test ends. */
class Python extends ChildRun {
  constructor(t: TestContext, script: string, args: string[]) {
    super(t, PYTHON, ['-u', script, ...args]);
  }
}

describe('paho-mqtt 1.6 (Python) against Braid', { skip }, () => {
  let tb: TestBroker;
  let dir: string;
  const clients: MqttClient[] = [];
  const credentials = { username: 'user', password: 'password' };

  before(async () => {
    if (!installed)
      assert.fail(`INTEROP_REQUIRED=1 but ${PYTHON} cannot import paho.mqtt (apt-get install python3-paho-mqtt)`);
    tb = await startBroker({ auth: { users: [{ name: 'user', password: 'password' }] } });
    dir = mkdtempSync(join(tmpdir(), 'braid-paho-'));
    writeFileSync(join(dir, 'waiting.py'), WAITING_SCRIPT);
  });

  after(async () => {
    await end(...clients);
    await tb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the seed snippet: the broker accepts user/password and the subscriber gets {"value": 22.1}', async (t) => {
    const script = SEED_SNIPPET.replace('"mqtt.example.com", 1883', `"127.0.0.1", ${tb.port}`);
    assert.notEqual(script, SEED_SNIPPET, 'the host and port were replaced');
    const path = join(dir, 'seed.py');
    writeFileSync(path, script);

    const dashboard = await connect(tb.url, { ...credentials, clientId: 'dashboard-sensors' });
    clients.push(dashboard);
    const got = collect(dashboard);
    await dashboard.subscribeAsync('/sensors/temp', { qos: 1 });

    const ready: Array<{ id: string; username?: string }> = [];
    const onReady = (client: { id: string; username?: string }) => ready.push(client);
    tb.broker.on('clientReady', onReady);
    t.after(() => tb.broker.off('clientReady', onReady));

    const py = new Python(t, path, []);
    await py.success('seed snippet');
    assert.doesNotMatch(py.out, /Failed to connect/);
    assert.doesNotMatch(py.out, /Traceback/);

    await waitFor(() => got.length >= 1, WAIT_MS, 'the message from the seed snippet');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.topic, '/sensors/temp');
    assert.equal(got[0]!.payload.toString(), '{"value": 22.1}');
    assert.ok(
      ready.some((c) => c.id === 'python_publisher' && c.username === 'user'),
      `the broker did not accept python_publisher as user "user": ${JSON.stringify(ready)}`,
    );
  });

  it('refuses the seed snippet with a wrong password (CONNACK 5, "Failed to connect")', async (t) => {
    const script = WAITING_SCRIPT.replace(
      'client.username_pw_set("user", "password")',
      'client.username_pw_set("user", "wrong")',
    );
    const path = join(dir, 'wrong-password.py');
    writeFileSync(path, script);
    const py = new Python(t, path, ['pub', '4', String(tb.port), '/sensors/temp', 'x', '0']);
    await py.waitFor(/Failed to connect, return code [45]\b/, 'refused login');
  });

  for (const version of ['4', '5'] as const) {
    const label = version === '5' ? 'MQTT 5.0' : 'MQTT 3.1.1';
    const protocolVersion = version === '5' ? 5 : 4;

    for (const qos of [0, 1] as const) {
      it(`${label}: paho publishes at QoS ${qos} to an mqtt.js subscriber`, async (t) => {
        const topic = `/sensors/v${version}/q${qos}`;
        const payload = `{"value": 22.${qos}}`;
        const sub = await connect(tb.url, { ...credentials, protocolVersion, clientId: `js-sub-v${version}-q${qos}` });
        clients.push(sub);
        const got = collect(sub);
        await sub.subscribeAsync(topic, { qos: 1 });

        const py = new Python(t, join(dir, 'waiting.py'), [
          'pub',
          version,
          String(tb.port),
          topic,
          payload,
          String(qos),
        ]);
        await py.success('paho publisher');
        assert.match(py.out, /^Connected to MQTT Broker!$/m);
        assert.match(py.out, /^PUBLISHED True$/m);

        await waitFor(() => got.length >= 1, WAIT_MS, 'the message from paho');
        assert.equal(got[0]!.topic, topic);
        assert.equal(got[0]!.payload.toString(), payload);
        assert.equal(got[0]!.packet.qos, qos);
      });

      it(`${label}: paho subscribes at QoS ${qos} and gets what mqtt.js publishes`, async (t) => {
        const topic = `/actuators/v${version}/q${qos}`;
        const payload = `{"setpoint": 21.${qos}}`;
        const py = new Python(t, join(dir, 'waiting.py'), ['sub', version, String(tb.port), topic, '', String(qos)]);
        await py.waitFor(/^SUBSCRIBED \d+$/m, 'paho SUBACK');
        assert.match(py.out, /^Connected to MQTT Broker!$/m);
        assert.match(py.out, new RegExp(`^SUBSCRIBED ${qos}$`, 'm'), 'granted QoS');

        const pub = await connect(tb.url, { ...credentials, protocolVersion, clientId: `js-pub-v${version}-q${qos}` });
        clients.push(pub);
        await pub.publishAsync(topic, payload, { qos: 1 });

        await py.success('paho subscriber');
        assert.match(py.out, new RegExp(`^MESSAGE ${escapeRe(topic)} ${qos} ${escapeRe(payload)}$`, 'm'));
      });
    }
  }
});
