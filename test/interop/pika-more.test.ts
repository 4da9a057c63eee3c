/**
 * More interop with Python pika 1.2 (Debian python3-pika, run by /usr/bin/python3), for what
 * pika.test.ts does not cover: a BlockingConnection with heartbeat=2 left idle in
 * process_data_events, basic_get with every basic property and a nack/requeue, publisher
 * confirms with a mandatory unroutable publish (UnroutableError carrying 312 NO_ROUTE), an
 * exclusive queue seen from another connection (405 RESOURCE_LOCKED) and after its owner closes
 * (gone), `queue_declare(passive=True)` on a missing queue (ChannelClosedByBroker 404, the
 * connection stays open), and header value types pika writes (D decimals, x byte arrays, T).
 *
 * One script holds a scenario per test (argv: port, scenario) and prints `R <json [name, value]>`
 * lines that the test reads back. Without pika the tests are skipped, unless INTEROP_REQUIRED=1
 * (as in CI), where it is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { ChildRun } from '../helpers/process.js';

const PYTHON = '/usr/bin/python3';

const installed = spawnSync(PYTHON, ['-c', 'import pika'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? 'python3-pika not installed' : false;

const SCRIPT = String.raw`import datetime
import decimal
import json
import sys
import time

import pika
from pika.exceptions import ChannelClosedByBroker, UnroutableError

port, scenario = int(sys.argv[1]), sys.argv[2]


def r(name, value):
    print("R " + json.dumps([name, value], default=repr), flush=True)


def params(**kw):
    return pika.ConnectionParameters("127.0.0.1", port, "/", pika.PlainCredentials("guest", "guest"), **kw)


def closed(e):
    return [type(e).__name__, e.reply_code, e.reply_text]


def heartbeat():
    conn = pika.BlockingConnection(params(heartbeat=2))
    r("negotiated", conn._impl.params.heartbeat)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    checker = conn._impl._heartbeat_checker
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.5)
    r("open_after_idle", conn.is_open)
    r("heartbeats_received", checker._heartbeat_frames_received > 0)
    r("heartbeats_sent", checker._heartbeat_frames_sent > 0)
    ch.basic_publish("", q, b"after idle")
    method, _, body = ch.basic_get(q, auto_ack=True)
    r("round_trip", body.decode())
    conn.close()


def get():
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"a": 1, "b": "x", "c": [1, "two"], "d": {"e": True}, "f": None},
        delivery_mode=2,
        priority=5,
        correlation_id="corr",
        reply_to="replies",
        expiration="60000",
        message_id="mid",
        timestamp=1700000000,
        type="kind",
        user_id="guest",
        app_id="pika-more",
    )
    ch.basic_publish("", q, b'{"x": 1}', props)
    method, got, body = ch.basic_get(q, auto_ack=False)
    r("get", [method.delivery_tag, method.redelivered, method.exchange, method.routing_key == q, method.message_count, body.decode()])
    r("props", {k: getattr(got, k) for k in ("content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id")})
    ch.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = ch.basic_get(q, auto_ack=True)
    r("requeued", [method.redelivered, body.decode()])
    r("empty", list(ch.basic_get(q)))
    conn.close()


def confirms():
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, b"routed", mandatory=True)
    r("routed", "confirmed")
    try:
        ch.basic_publish("", "pika-more-no-such-queue", b"lost", mandatory=True)
        r("unroutable", "not reported")
    except UnroutableError as e:
        m = e.messages[0]
        r("unroutable", [len(e.messages), m.method.reply_code, m.method.reply_text, m.method.exchange, m.method.routing_key, m.body.decode()])
    # user_id must match the authenticated user (RabbitMQ validated user-id): 406 otherwise.
    try:
        ch.basic_publish("", q, b"spoofed", pika.BasicProperties(user_id="someone-else"))
        r("user_id", "accepted")
    except ChannelClosedByBroker as e:
        r("user_id", closed(e))
    conn.close()


def exclusive():
    owner = pika.BlockingConnection(params())
    och = owner.channel()
    q = och.queue_declare(queue="", exclusive=True).method.queue
    r("name", q)
    other = pika.BlockingConnection(params())
    for what, call in (
        ("passive", lambda ch: ch.queue_declare(queue=q, passive=True)),
        ("consume", lambda ch: ch.basic_consume(q, lambda *a: None)),
        ("get", lambda ch: ch.basic_get(q)),
    ):
        ch = other.channel()
        try:
            call(ch)
            r(what, "allowed")
        except ChannelClosedByBroker as e:
            r(what, closed(e))
    # The owner's own second channel may use it.
    r("owner_channel", och.queue_declare(queue=q, passive=True).method.consumer_count)
    owner.close()
    ch = other.channel()
    try:
        ch.queue_declare(queue=q, passive=True)
        r("after_owner_closed", "still there")
    except ChannelClosedByBroker as e:
        r("after_owner_closed", closed(e))
    other.close()


def passive():
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    try:
        ch.queue_declare(queue="pika-more-missing", passive=True)
        r("passive", "declared")
    except ChannelClosedByBroker as e:
        r("passive", closed(e))
    r("channel_closed", ch.is_closed)
    r("connection_open", conn.is_open)
    ch = conn.channel()
    try:
        ch.exchange_declare(exchange="pika-more-missing-x", passive=True)
    except ChannelClosedByBroker as e:
        r("passive_exchange", closed(e))
    ch = conn.channel()
    r("new_channel", ch.queue_declare(queue="", exclusive=True).method.queue.startswith("amq.gen-"))
    conn.close()


def headers():
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    sent = {
        "dec": decimal.Decimal("3.14"),
        "negdec": decimal.Decimal("-1.5"),
        "bytes": b"\x00\xff",
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "long": 2**40,
    }
    ch.basic_publish("", q, b"h", pika.BasicProperties(headers=sent))
    _, props, _ = ch.basic_get(q, auto_ack=True)
    got = props.headers
    r("sent", {k: repr(v) for k, v in sent.items()})
    r("got", {k: repr(v) for k, v in got.items()})
    r("mismatches", sorted(k for k in sent if got.get(k) != sent[k] or not isinstance(got.get(k), type(sent[k]))))
    conn.close()


{"heartbeat": heartbeat, "get": get, "confirms": confirms, "exclusive": exclusive, "passive": passive, "headers": headers}[scenario]()
r("done", True)
`;

describe('pika 1.2 (Python), more: heartbeats, basic_get, confirms, exclusive and passive declares', { skip }, () => {
  let tb: TestBroker;
  let port: number;
  let dir: string;

  before(async () => {
    if (!installed) assert.fail(`INTEROP_REQUIRED=1 but ${PYTHON} cannot import pika (apt-get install python3-pika)`);
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    port = tb.broker.address('amqp')!.port;
    dir = mkdtempSync(join(tmpdir(), 'braid-pika-more-'));
    writeFileSync(join(dir, 'scenarios.py'), SCRIPT);
  });

  after(async () => {
    await tb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one scenario to its end and returns what it reported, by name. */
  async function scenario(t: TestContext, name: string, timeoutMs = 15_000): Promise<Map<string, unknown>> {
    const py = new ChildRun(t, PYTHON, ['-u', join(dir, 'scenarios.py'), String(port), name]);
    const r = await py.exit(`pika ${name}`, timeoutMs);
    const results = new Map<string, unknown>();
    for (const line of py.out.split('\n')) {
      if (!line.startsWith('R ')) continue;
      const [k, v] = JSON.parse(line.slice(2)) as [string, unknown];
      results.set(k, v);
    }
    assert.equal(r.code, 0, `pika ${name}: exit ${r.code ?? r.signal}; it printed:\n${py.out}`);
    assert.equal(results.get('done'), true, `pika ${name} did not finish; it printed:\n${py.out}`);
    return results;
  }

  it('BlockingConnection(heartbeat=2) idles in process_data_events: heartbeats both ways, still usable', async (t) => {
    const r = await scenario(t, 'heartbeat');
    assert.equal(r.get('negotiated'), 2);
    assert.equal(r.get('open_after_idle'), true);
    assert.equal(r.get('heartbeats_received'), true, 'the broker sent heartbeat frames');
    assert.equal(r.get('heartbeats_sent'), true);
    assert.equal(r.get('round_trip'), 'after idle');
  });

  it('basic_get returns every basic property; basic_nack(requeue=True) redelivers; an empty get is (None, None, None)', async (t) => {
    const r = await scenario(t, 'get');
    assert.deepEqual(r.get('get'), [1, false, '', true, 0, '{"x": 1}']);
    assert.deepEqual(r.get('props'), {
      content_type: 'application/json',
      content_encoding: 'utf-8',
      headers: { a: 1, b: 'x', c: [1, 'two'], d: { e: true }, f: null },
      delivery_mode: 2,
      priority: 5,
      correlation_id: 'corr',
      reply_to: 'replies',
      expiration: '60000',
      message_id: 'mid',
      timestamp: 1700000000,
      type: 'kind',
      user_id: 'guest',
      app_id: 'pika-more',
      cluster_id: null,
    });
    assert.deepEqual(r.get('requeued'), [true, '{"x": 1}']);
    assert.deepEqual(r.get('empty'), [null, null, null]);
  });

  it('confirm_delivery: a mandatory unroutable publish raises UnroutableError (312 NO_ROUTE); a spoofed user_id is 406', async (t) => {
    const r = await scenario(t, 'confirms');
    assert.equal(r.get('routed'), 'confirmed');
    assert.deepEqual(r.get('unroutable'), [1, 312, 'NO_ROUTE', '', 'pika-more-no-such-queue', 'lost']);
    assert.deepEqual(r.get('user_id'), [
      'ChannelClosedByBroker',
      406,
      "PRECONDITION_FAILED - user_id property set to 'someone-else' but authenticated user was 'guest'",
    ]);
  });

  it('an exclusive queue: 405 RESOURCE_LOCKED from another connection, usable by its owner, gone when the owner closes', async (t) => {
    const r = await scenario(t, 'exclusive');
    const q = r.get('name') as string;
    assert.match(q, /^amq\.gen-/);
    const locked = [
      'ChannelClosedByBroker',
      405,
      `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
    ];
    assert.deepEqual(r.get('passive'), locked);
    assert.deepEqual(r.get('consume'), locked);
    assert.deepEqual(r.get('get'), locked);
    assert.equal(r.get('owner_channel'), 0);
    assert.deepEqual(r.get('after_owner_closed'), [
      'ChannelClosedByBroker',
      404,
      `NOT_FOUND - no queue '${q}' in vhost '/'`,
    ]);
  });

  it('queue_declare(passive=True) on a missing queue: ChannelClosedByBroker 404, the connection stays open', async (t) => {
    const r = await scenario(t, 'passive');
    assert.deepEqual(r.get('passive'), [
      'ChannelClosedByBroker',
      404,
      "NOT_FOUND - no queue 'pika-more-missing' in vhost '/'",
    ]);
    assert.equal(r.get('channel_closed'), true);
    assert.equal(r.get('connection_open'), true);
    assert.deepEqual(r.get('passive_exchange'), [
      'ChannelClosedByBroker',
      404,
      "NOT_FOUND - no exchange 'pika-more-missing-x' in vhost '/'",
    ]);
    assert.equal(r.get('new_channel'), true);
  });

  // pika writes Decimal as D (scale + signed 32-bit digits), bytes as x, datetime as T, big ints
  // as l. RabbitMQ keeps each value's type (rabbit_binary_parser.erl: D parses to
  // {decimal, {Scale, Digits}} and is written back as D), so pika reads back Decimal('3.14') and
  // Decimal('-1.5').
  it('headers pika writes (D decimal, x bytes, T timestamp, l long) come back with their types', async (t) => {
    const r = await scenario(t, 'headers');
    assert.deepEqual(
      r.get('mismatches'),
      [],
      `sent ${JSON.stringify(r.get('sent'))}\ngot ${JSON.stringify(r.get('got'))}`,
    );
  });
});
