/**
 * Interop with Python pika 1.2 (Debian python3-pika, run by /usr/bin/python3). Three scripts:
 *
 * 1. The seed snippet of ../shared/seeds/002_d63426611807300e.txt, byte for byte (it needs no
 *    indentation: the only multi-line statement is inside parentheses). It connects to
 *    `pika.ConnectionParameters('rabbitmq.example.com')`, the default port; rather than edit it, a
 *    small wrapper replaces `pika.ConnectionParameters` with a subclass that keeps every other
 *    argument and points host and port at the test broker, then runs the snippet file with
 *    runpy. The snippet declares the direct exchange `logs` and publishes to it with key `info`;
 *    an amqplib consumer bound to `logs`/`info` gets the message.
 * 2. A pika consumer: basic_consume + basic_ack of what amqplib publishes; the ack is seen by
 *    the broker (the queue is empty afterwards).
 * 3. Pika publisher confirms (`confirm_delivery()`): five persistent publishes confirmed, and a
 *    mandatory unroutable publish raises UnroutableError (basic.return before basic.ack).
 *
 * Without pika the tests are skipped, unless INTEROP_REQUIRED=1 (as in CI), where it is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Channel, ChannelModel } from 'amqplib';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { waitFor } from '../helpers/mqtt.js';
import { ChildRun, WAIT_MS } from '../helpers/process.js';
import { amqpConnect, closeQuietly, consumeAll } from '../helpers/raw-amqp.js';

const PYTHON = '/usr/bin/python3';

function pikaInstalled(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import pika'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

const installed = pikaInstalled();
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? 'python3-pika not installed' : false;

/** The seed snippet, byte for byte. */
const SEED_SNIPPET = `import pika
connection = pika.BlockingConnection(pika.ConnectionParameters('rabbitmq.example.com'))
channel = connection.channel()
channel.exchange_declare(exchange='logs', exchange_type='direct')
channel.basic_publish(
exchange='logs',
routing_key='info',
body='{"message": "System started successfully."}'
)
print(" [x] Sent 'Hello World!'")
connection.close()
`;

/** Runs the snippet (argv[1]) with pika.ConnectionParameters pointed at 127.0.0.1:argv[2]. */
const WRAPPER = `import runpy
import sys

import pika

SNIPPET, PORT = sys.argv[1], int(sys.argv[2])
_Original = pika.ConnectionParameters


class TestBrokerParameters(_Original):
    def __init__(self, host=_Original._DEFAULT, port=_Original._DEFAULT, *args, **kwargs):
        print("SNIPPET ASKED FOR %r %r" % (host, port if port is not _Original._DEFAULT else "default port"))
        super().__init__("127.0.0.1", PORT, *args, **kwargs)


pika.ConnectionParameters = TestBrokerParameters
runpy.run_path(SNIPPET, run_name="__main__")
`;

/** Consumes one message from a queue it declares, acks it, closes. Arguments: port, queue. */
const CONSUMER = `import sys

import pika

port, queue = int(sys.argv[1]), sys.argv[2]
connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
channel = connection.channel()
channel.queue_declare(queue=queue)
channel.basic_qos(prefetch_count=1)


def on_message(ch, method, properties, body):
    print("RECEIVED %s %s %s %s" % (method.routing_key, properties.content_type, method.redelivered, body.decode()))
    ch.basic_ack(delivery_tag=method.delivery_tag)
    ch.stop_consuming()


tag = channel.basic_consume(queue=queue, on_message_callback=on_message)
print("CONSUMING %s" % tag)
channel.start_consuming()
connection.close()
print("CLOSED")
`;

/** Publishes five confirmed messages and one unroutable mandatory one. Arguments: port, queue. */
const CONFIRMS = `import sys

import pika

port, queue = int(sys.argv[1]), sys.argv[2]
connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
channel = connection.channel()
channel.confirm_delivery()
channel.queue_declare(queue=queue)
for i in range(5):
    channel.basic_publish(
        exchange="",
        routing_key=queue,
        body="confirmed %d" % i,
        properties=pika.BasicProperties(delivery_mode=2),
    )
    print("CONFIRMED %d" % i)
try:
    channel.basic_publish(exchange="amq.direct", routing_key="nobody-is-bound", body="lost", mandatory=True)
    print("UNROUTABLE NOT REPORTED")
except pika.exceptions.UnroutableError as e:
    print("UNROUTABLE %d" % len(e.messages))
connection.close()
print("CLOSED")
`;

/** A python process (unbuffered, so each line is seen when printed); killed when the test ends. */
class Python extends ChildRun {
  constructor(t: TestContext, script: string, args: string[]) {
    super(t, PYTHON, ['-u', script, ...args]);
  }
}

describe('pika 1.2 (Python) against Braid', { skip }, () => {
  let tb: TestBroker;
  let port: number;
  let dir: string;
  const conns: ChannelModel[] = [];

  before(async () => {
    if (!installed) assert.fail(`INTEROP_REQUIRED=1 but ${PYTHON} cannot import pika (apt-get install python3-pika)`);
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    port = tb.broker.address('amqp')!.port;
    dir = mkdtempSync(join(tmpdir(), 'braid-pika-'));
    writeFileSync(join(dir, 'seed.py'), SEED_SNIPPET);
    writeFileSync(join(dir, 'run_seed.py'), WRAPPER);
    writeFileSync(join(dir, 'consumer.py'), CONSUMER);
    writeFileSync(join(dir, 'confirms.py'), CONFIRMS);
  });

  after(async () => {
    await closeQuietly(...conns);
    await tb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function channel(): Promise<Channel> {
    const conn = await amqpConnect(port);
    conns.push(conn);
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    return ch;
  }

  it('runs the seed snippet unchanged: an amqplib consumer bound to logs/info gets the message', async (t) => {
    const ch = await channel();
    // The snippet's exchange_declare: direct, not durable, not auto-delete (pika's defaults).
    await ch.assertExchange('logs', 'direct', { durable: false, autoDelete: false });
    const q = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q.queue, 'logs', 'info');
    const got = await consumeAll(ch, q.queue);

    const py = new Python(t, join(dir, 'run_seed.py'), [join(dir, 'seed.py'), String(port)]);
    await py.success('seed snippet');
    assert.match(py.out, /^SNIPPET ASKED FOR 'rabbitmq\.example\.com' 'default port'$/m, 'the snippet made the call');
    assert.match(py.out, /^ \[x\] Sent 'Hello World!'$/m);
    assert.doesNotMatch(py.out, /Traceback/);

    await waitFor(() => got.length >= 1, WAIT_MS, 'the message from the seed snippet');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.content.toString(), '{"message": "System started successfully."}');
    assert.equal(got[0]!.fields.exchange, 'logs');
    assert.equal(got[0]!.fields.routingKey, 'info');
  });

  it('pika consumes with basic_consume and acks with basic_ack', async (t) => {
    const queue = 'pika-work';
    const py = new Python(t, join(dir, 'consumer.py'), [String(port), queue]);
    await py.waitFor(/^CONSUMING \S+$/m, 'pika basic_consume');

    const ch = await channel();
    ch.sendToQueue(queue, Buffer.from('hello pika'), { contentType: 'text/plain' });
    await py.success('pika consumer');
    assert.match(py.out, /^RECEIVED pika-work text\/plain False hello pika$/m);
    assert.match(py.out, /^CLOSED$/m);
    assert.doesNotMatch(py.out, /Traceback/);

    // The ack reached the broker: nothing is left to redeliver once pika has gone.
    const q = await ch.checkQueue(queue);
    assert.equal(q.messageCount, 0, 'the acked message is gone');
    assert.equal(q.consumerCount, 0, 'pika’s consumer is gone');
    await ch.deleteQueue(queue);
  });

  it('pika publisher confirms: five confirmed publishes, and a mandatory unroutable one raises UnroutableError', async (t) => {
    const queue = 'pika-confirms';
    const py = new Python(t, join(dir, 'confirms.py'), [String(port), queue]);
    await py.success('pika publisher');
    for (let i = 0; i < 5; i++) assert.match(py.out, new RegExp(`^CONFIRMED ${i}$`, 'm'));
    assert.match(py.out, /^UNROUTABLE 1$/m, 'basic.return came before the confirm');
    assert.match(py.out, /^CLOSED$/m);
    assert.doesNotMatch(py.out, /Traceback/);

    const ch = await channel();
    const q = await ch.checkQueue(queue);
    assert.equal(q.messageCount, 5);
    const got = await consumeAll(ch, queue);
    await waitFor(() => got.length >= 5, WAIT_MS, 'the five confirmed messages');
    assert.deepEqual(
      got.map((m) => m.content.toString()),
      [0, 1, 2, 3, 4].map((i) => `confirmed ${i}`),
    );
    assert.ok(got.every((m) => m.properties.deliveryMode === 2));
    await ch.deleteQueue(queue);
  });
});
