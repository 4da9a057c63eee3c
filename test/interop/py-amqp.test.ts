/**
 * Interop with py-amqp 5.1 (Debian python3-amqp, run by /usr/bin/python3): the AMQP 0-9-1
 * client under kombu and Celery. One Python script holds a scenario per test (argv: port,
 * scenario); each prints `R <json [name, value]>` lines that the test reads back, so a failure
 * shows what py-amqp saw. Scenarios: connection and server properties, declare/bind/publish with
 * properties and application_headers under `confirm_publish=True`, basic_get, basic_qos +
 * basic_consume + drain_events with basic_ack/basic_reject, a mandatory unroutable publish,
 * tx_select/commit/rollback, heartbeats (heartbeat=2 with `heartbeat_tick()`, and a client that
 * goes silent), header value types, and RabbitMQ extensions py-amqp/kombu/Celery use (consumer
 * cancel notification, direct reply-to, dead lettering with x-death, reject-publish nacks).
 *
 * Without py-amqp the tests are skipped, unless INTEROP_REQUIRED=1 (as in CI), where it is a failure.
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

const installed = spawnSync(PYTHON, ['-c', 'import amqp'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? 'python3-amqp not installed' : false;

const SCRIPT = String.raw`import datetime
import decimal
import json
import sys
import time

import amqp

port, scenario = int(sys.argv[1]), sys.argv[2]


def r(name, value):
    print("R " + json.dumps([name, value], default=repr), flush=True)


def connect(**kw):
    c = amqp.Connection("127.0.0.1:%d" % port, userid="guest", password="guest", virtual_host="/", **kw)
    c.connect()
    return c


def error(e):
    return [type(e).__name__, getattr(e, "reply_code", None), getattr(e, "reply_text", str(e))]


def props(m):
    return {k: v for k, v in m.properties.items() if k != "application_headers"}


def basics():
    conn = connect(confirm_publish=True)
    sp = conn.server_properties
    r("product", sp.get("product"))
    r("capabilities", sorted(k for k, v in sp.get("capabilities", {}).items() if v is True))
    r("mechanisms", sorted(m.decode() for m in conn.mechanisms))
    r("tune", [conn.channel_max, conn.frame_max, conn.server_heartbeat])
    ch = conn.channel()
    ch.exchange_declare("pyamqp.topic", "topic", durable=False, auto_delete=False)
    q = ch.queue_declare("pyamqp.basics", durable=False, exclusive=False, auto_delete=False)
    r("declare_ok", [q.queue, q.message_count, q.consumer_count])
    ch.queue_bind("pyamqp.basics", "pyamqp.topic", "orders.*")
    msg = amqp.Message(
        "hello py-amqp",
        content_type="text/plain",
        delivery_mode=2,
        priority=3,
        correlation_id="corr-1",
        reply_to="replies",
        message_id="msg-1",
        timestamp=1700000000,
        type="order.created",
        app_id="pyamqp-test",
        expiration="60000",
        application_headers={"x-int": 7, "x-str": "s", "x-bool": True, "x-list": [1, "two"], "x-table": {"k": "v"}},
    )
    ch.basic_publish(msg, "pyamqp.topic", "orders.new")
    r("published", "confirmed")
    ch.basic_publish(amqp.Message("not bound"), "pyamqp.topic", "invoices.new")
    r("declare_passive", ch.queue_declare("pyamqp.basics", passive=True).message_count)
    m = ch.basic_get("pyamqp.basics")
    r("get_body", m.body)
    r("get_info", {k: m.delivery_info[k] for k in ("exchange", "routing_key", "redelivered", "message_count")})
    r("get_props", props(m))
    r("get_headers", m.headers)
    ch.basic_ack(m.delivery_tag)
    r("get_empty", ch.basic_get("pyamqp.basics") is None)
    try:
        ch.queue_declare("pyamqp.no-such-queue", passive=True)
    except amqp.exceptions.NotFound as e:
        r("passive_missing", error(e))
    # py-amqp answers channel.close and reopens the channel (Channel._do_revive): still usable.
    r("channel_after_404", ch.queue_declare("pyamqp.basics", passive=True).message_count)
    ch2 = conn.channel()
    ch2.queue_unbind("pyamqp.basics", "pyamqp.topic", "orders.*")
    r("deleted", ch2.queue_delete("pyamqp.basics"))
    ch2.exchange_delete("pyamqp.topic")
    conn.close()
    r("closed", bool(conn.connected))


def consume():
    conn = connect()
    ch = conn.channel()
    ch.queue_declare("pyamqp.work", auto_delete=False)
    for i in range(3):
        ch.basic_publish(amqp.Message("job %d" % i), "", "pyamqp.work")
    ch.basic_qos(0, 2, False)
    got = []
    tag = ch.basic_consume("pyamqp.work", callback=got.append, consumer_tag="pyamqp-ctag")
    r("consumer_tag", tag)
    while len(got) < 2:
        conn.drain_events(timeout=5)
    r("first_two", [[m.body, m.delivery_info["redelivered"], m.delivery_info["consumer_tag"]] for m in got])
    # Prefetch 2: the third is held back until one of the two is settled.
    try:
        conn.drain_events(timeout=0.5)
        r("held_back", False)
    except TimeoutError:
        r("held_back", True)
    ch.basic_ack(got[0].delivery_tag)
    ch.basic_reject(got[1].delivery_tag, requeue=True)
    while len(got) < 4:
        conn.drain_events(timeout=5)
    r("after_settle", sorted([m.body, m.delivery_info["redelivered"]] for m in got[2:]))
    for m in got[2:]:
        ch.basic_ack(m.delivery_tag)
    ch.basic_cancel(tag)
    r("left", ch.queue_declare("pyamqp.work", passive=True).message_count)
    ch.queue_delete("pyamqp.work")
    conn.close()


def confirms():
    conn = connect(confirm_publish=True)
    ch = conn.channel()
    ch.queue_declare("pyamqp.confirms", auto_delete=False)
    for i in range(5):
        ch.basic_publish(amqp.Message("c%d" % i, delivery_mode=2), "", "pyamqp.confirms")
    r("confirmed", ch.queue_declare("pyamqp.confirms", passive=True).message_count)
    # basic.return comes before basic.ack: py-amqp raises it from basic_publish.
    try:
        ch.basic_publish(amqp.Message("lost"), "amq.direct", "nobody-is-bound", mandatory=True)
        r("unroutable", "not reported")
    except amqp.exceptions.ChannelError as e:
        r("unroutable", error(e))
    r("channel_open", ch.is_open)
    ch.basic_publish(amqp.Message("after"), "", "pyamqp.confirms")
    r("after_return", ch.queue_declare("pyamqp.confirms", passive=True).message_count)
    # x-overflow=reject-publish: the publish over the limit is nacked.
    ch.queue_declare("pyamqp.max1", auto_delete=False, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.basic_publish(amqp.Message("fits"), "", "pyamqp.max1")
    try:
        ch.basic_publish(amqp.Message("over"), "", "pyamqp.max1")
        r("overflow", "acked")
    except amqp.exceptions.MessageNacked as e:
        r("overflow", "nacked")
    ch.queue_delete("pyamqp.max1")
    ch.queue_delete("pyamqp.confirms")
    conn.close()


def tx():
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("pyamqp.tx", auto_delete=False).queue
    counter = conn.channel()
    count = lambda: counter.queue_declare(q, passive=True).message_count
    ch.tx_select()
    ch.basic_publish(amqp.Message("tx1"), "", q)
    r("before_commit", count())
    ch.tx_commit()
    r("after_commit", count())
    ch.basic_publish(amqp.Message("tx2"), "", q)
    ch.tx_rollback()
    r("after_rollback", count())
    # An ack inside a rolled back transaction is undone: the message stays unacked.
    m = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()
    r("ack_rolled_back", count())
    ch.close()
    r("requeued_on_close", count())
    # RabbitMQ refuses confirm_select on a tx channel.
    ch3 = conn.channel()
    ch3.tx_select()
    try:
        ch3.confirm_select()
        r("tx_then_confirm", "accepted")
    except amqp.exceptions.PreconditionFailed as e:
        r("tx_then_confirm", error(e))
    counter.queue_delete(q)
    conn.close()


def heartbeat():
    conn = connect(heartbeat=2)
    r("negotiated", conn.heartbeat)
    ch = conn.channel()
    ch.queue_declare("pyamqp.hb", auto_delete=False)
    # Idle for 5 s (two and a half intervals), as a worker's event loop: heartbeat_tick() sends
    # ours and raises ConnectionForced if the broker's stopped arriving.
    frames_before = conn.bytes_recv
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        conn.heartbeat_tick()
        try:
            conn.drain_events(timeout=0.2)
        except TimeoutError:
            pass
    r("alive", conn.connected)
    r("heard_from_broker", conn.bytes_recv > frames_before)
    ch.basic_publish(amqp.Message("after idle"), "", "pyamqp.hb")
    r("round_trip", ch.queue_declare("pyamqp.hb", passive=True).message_count)
    ch.queue_delete("pyamqp.hb")
    conn.close()
    # A client that negotiates 1 s and then sends nothing is dropped (RabbitMQ: after two
    # missed intervals); its next call fails.
    silent = connect(heartbeat=1)
    sch = silent.channel()
    time.sleep(6)
    try:
        sch.queue_declare("", exclusive=True)
        r("silent", "still open")
    except Exception as e:
        r("silent", "dropped")


def headers(which):
    conn = connect()
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).queue
    if which == "common":
        sent = {
            "str": "héllo",
            "int": -7,
            "big": 2**40,
            "bool": False,
            "float": 0.25,
            "none": None,
            "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "list": [1, "two", [3], {"four": 4}],
            "table": {"a": {"b": None}},
        }
    else:
        # py-amqp writes Decimal as D (scale + signed digits) and bytes as S (a longstr, which
        # the spec and RabbitMQ treat as bytes, not text); reading S it gives back bytes when
        # they are not UTF-8.
        sent = {"dec": decimal.Decimal("3.14"), "negdec": decimal.Decimal("-1.5"), "raw": b"\x00\xff\xfe binary"}
    ch.basic_publish(amqp.Message(b"h", application_headers=sent), "", q)
    m = None
    for _ in range(100):
        m = ch.basic_get(q, no_ack=True)
        if m:
            break
        time.sleep(0.02)
    got = m.headers
    r("sent", {k: repr(v) for k, v in sent.items()})
    r("got", {k: repr(v) for k, v in got.items()})
    r("mismatches", sorted(k for k in sent if got.get(k) != sent[k] or not isinstance(got.get(k), type(sent[k]))))
    conn.close()


def extensions():
    conn = connect()
    other = connect()
    ch = conn.channel()
    # Consumer cancel notification: the queue is deleted under a consumer.
    ch.queue_declare("pyamqp.doomed", auto_delete=False)
    cancelled = []
    ch.basic_consume("pyamqp.doomed", callback=lambda m: None, on_cancel=cancelled.append, consumer_tag="doomed-ctag")
    other.channel().queue_delete("pyamqp.doomed")
    deadline = time.monotonic() + 5
    while not cancelled and time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.2)
        except TimeoutError:
            pass
    r("cancel_notify", cancelled)
    # Direct reply-to: RPC without a reply queue.
    replies = []
    ch.basic_consume("amq.rabbitmq.reply-to", callback=replies.append, no_ack=True)
    srv = other.channel()
    srv.queue_declare("pyamqp.rpc", auto_delete=False)
    ch.basic_publish(amqp.Message("ping", reply_to="amq.rabbitmq.reply-to", correlation_id="42"), "", "pyamqp.rpc")
    req = None
    for _ in range(100):
        req = srv.basic_get("pyamqp.rpc", no_ack=True)
        if req:
            break
        time.sleep(0.02)
    r("request_reply_to", req.properties["reply_to"])
    srv.basic_publish(amqp.Message("pong", correlation_id=req.properties["correlation_id"]), "", req.properties["reply_to"])
    while not replies:
        conn.drain_events(timeout=5)
    r("reply", [replies[0].body, replies[0].properties.get("correlation_id")])
    srv.queue_delete("pyamqp.rpc")
    # Dead lettering: a rejected message goes to the DLX with an x-death header.
    ch.exchange_declare("pyamqp.dlx", "fanout", auto_delete=False)
    ch.queue_declare("pyamqp.dlq", auto_delete=False)
    ch.queue_bind("pyamqp.dlq", "pyamqp.dlx", "")
    ch.queue_declare("pyamqp.dl-work", auto_delete=False, arguments={"x-dead-letter-exchange": "pyamqp.dlx"})
    ch.basic_publish(amqp.Message("dead", application_headers={"orig": 1}), "", "pyamqp.dl-work")
    m = None
    for _ in range(100):
        m = ch.basic_get("pyamqp.dl-work")
        if m:
            break
        time.sleep(0.02)
    ch.basic_reject(m.delivery_tag, requeue=False)
    d = None
    for _ in range(100):
        d = ch.basic_get("pyamqp.dlq", no_ack=True)
        if d:
            break
        time.sleep(0.02)
    r("dead_info", [d.body, d.delivery_info["exchange"], d.delivery_info["routing_key"]])
    death = d.headers["x-death"][0]
    r("x_death", {k: (v if k != "time" else type(v).__name__) for k, v in death.items()})
    r("x_first_death", {k: v for k, v in d.headers.items() if k.startswith("x-first-death") or k.startswith("x-last-death")})
    for q in ("pyamqp.dl-work", "pyamqp.dlq"):
        ch.queue_delete(q)
    ch.exchange_delete("pyamqp.dlx")
    other.close()
    conn.close()


{
    "basics": basics,
    "consume": consume,
    "confirms": confirms,
    "tx": tx,
    "heartbeat": heartbeat,
    "headers-common": lambda: headers("common"),
    "headers-exact": lambda: headers("exact"),
    "extensions": extensions,
}[scenario]()
r("done", True)
`;

describe('py-amqp 5.1 (Python, under kombu/Celery) against Braid', { skip }, () => {
  let tb: TestBroker;
  let port: number;
  let dir: string;

  before(async () => {
    if (!installed) assert.fail(`INTEROP_REQUIRED=1 but ${PYTHON} cannot import amqp (apt-get install python3-amqp)`);
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    port = tb.broker.address('amqp')!.port;
    dir = mkdtempSync(join(tmpdir(), 'braid-pyamqp-'));
    writeFileSync(join(dir, 'scenarios.py'), SCRIPT);
  });

  after(async () => {
    await tb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one scenario to its end and returns what it reported, by name. */
  async function scenario(t: TestContext, name: string, timeoutMs = 15_000): Promise<Map<string, unknown>> {
    const py = new ChildRun(t, PYTHON, ['-u', join(dir, 'scenarios.py'), String(port), name]);
    const r = await py.exit(`py-amqp ${name}`, timeoutMs);
    const results = new Map<string, unknown>();
    for (const line of py.out.split('\n')) {
      if (!line.startsWith('R ')) continue;
      const [k, v] = JSON.parse(line.slice(2)) as [string, unknown];
      results.set(k, v);
    }
    assert.equal(r.code, 0, `py-amqp ${name}: exit ${r.code ?? r.signal}; it printed:\n${py.out}`);
    assert.equal(results.get('done'), true, `py-amqp ${name} did not finish; it printed:\n${py.out}`);
    t.diagnostic(py.out.trim());
    return results;
  }

  it('connects and sees RabbitMQ-compatible server properties and tuning', async (t) => {
    const r = await scenario(t, 'basics');
    assert.equal(typeof r.get('product'), 'string');
    // The capabilities RabbitMQ advertises and clients look for.
    for (const cap of [
      'publisher_confirms',
      'exchange_exchange_bindings',
      'basic.nack',
      'consumer_cancel_notify',
      'connection.blocked',
      'authentication_failure_close',
      'per_consumer_qos',
      'direct_reply_to',
    ]) {
      assert.ok((r.get('capabilities') as string[]).includes(cap), `capability ${cap}`);
    }
    assert.deepEqual(r.get('mechanisms'), ['AMQPLAIN', 'PLAIN']);
    // RabbitMQ's defaults: channel_max 2047, frame_max 131072, heartbeat 60.
    assert.deepEqual(r.get('tune'), [2047, 131072, 60]);
  });

  it('exchange/queue declare, bind, confirmed publish with properties and headers, basic_get, passive 404', async (t) => {
    const r = await scenario(t, 'basics');
    assert.deepEqual(r.get('declare_ok'), ['pyamqp.basics', 0, 0]);
    assert.equal(r.get('published'), 'confirmed');
    assert.equal(r.get('declare_passive'), 1, 'only the bound key was routed');
    assert.equal(r.get('get_body'), 'hello py-amqp');
    assert.deepEqual(r.get('get_info'), {
      exchange: 'pyamqp.topic',
      routing_key: 'orders.new',
      redelivered: false,
      message_count: 0,
    });
    assert.deepEqual(r.get('get_props'), {
      content_type: 'text/plain',
      content_encoding: 'utf-8', // py-amqp's own for a str body
      delivery_mode: 2,
      priority: 3,
      correlation_id: 'corr-1',
      reply_to: 'replies',
      expiration: '60000',
      message_id: 'msg-1',
      timestamp: 1700000000,
      type: 'order.created',
      app_id: 'pyamqp-test',
    });
    assert.deepEqual(r.get('get_headers'), {
      'x-int': 7,
      'x-str': 's',
      'x-bool': true,
      'x-list': [1, 'two'],
      'x-table': { k: 'v' },
    });
    assert.equal(r.get('get_empty'), true, 'basic.get-empty');
    assert.deepEqual(r.get('passive_missing'), [
      'NotFound',
      404,
      "NOT_FOUND - no queue 'pyamqp.no-such-queue' in vhost '/'",
    ]);
    assert.equal(r.get('channel_after_404'), 0, 'py-amqp reopens the channel after a channel error');
    assert.equal(r.get('deleted'), 0);
    assert.equal(r.get('closed'), false);
  });

  it('basic_qos + basic_consume + drain_events; basic_ack and basic_reject(requeue=True)', async (t) => {
    const r = await scenario(t, 'consume');
    assert.equal(r.get('consumer_tag'), 'pyamqp-ctag');
    assert.deepEqual(r.get('first_two'), [
      ['job 0', false, 'pyamqp-ctag'],
      ['job 1', false, 'pyamqp-ctag'],
    ]);
    assert.equal(r.get('held_back'), true, 'prefetch_count=2 holds the third');
    assert.deepEqual(r.get('after_settle'), [
      ['job 1', true],
      ['job 2', false],
    ]);
    assert.equal(r.get('left'), 0);
  });

  it('confirm_publish: five confirms; a mandatory unroutable publish raises 312 NO_ROUTE; reject-publish nacks', async (t) => {
    const r = await scenario(t, 'confirms');
    assert.equal(r.get('confirmed'), 5);
    assert.deepEqual(r.get('unroutable'), ['ChannelError', 312, 'NO_ROUTE']);
    assert.equal(r.get('channel_open'), true, 'a basic.return does not close the channel');
    assert.equal(r.get('after_return'), 6);
    assert.equal(r.get('overflow'), 'nacked');
  });

  it('tx_select / tx_commit / tx_rollback, including an ack rolled back; no confirm_select on a tx channel', async (t) => {
    const r = await scenario(t, 'tx');
    assert.equal(r.get('before_commit'), 0);
    assert.equal(r.get('after_commit'), 1);
    assert.equal(r.get('after_rollback'), 1);
    assert.equal(r.get('ack_rolled_back'), 0, 'still unacked, not ready');
    assert.equal(r.get('requeued_on_close'), 1);
    assert.deepEqual(r.get('tx_then_confirm'), [
      'PreconditionFailed',
      406,
      'PRECONDITION_FAILED - cannot switch from tx to confirm mode',
    ]);
  });

  it('heartbeats: heartbeat=2 with heartbeat_tick() survives idling; a silent client is dropped', async (t) => {
    const r = await scenario(t, 'heartbeat', 30_000);
    assert.equal(r.get('negotiated'), 2);
    assert.equal(r.get('alive'), true);
    assert.equal(r.get('heard_from_broker'), true, 'the broker sent heartbeats while idle');
    assert.equal(r.get('round_trip'), 1);
    assert.equal(r.get('silent'), 'dropped');
  });

  it('application_headers: strings, ints, bools, floats, void, timestamps, arrays, tables round-trip', async (t) => {
    const r = await scenario(t, 'headers-common');
    assert.deepEqual(
      r.get('mismatches'),
      [],
      `sent ${JSON.stringify(r.get('sent'))}\ngot ${JSON.stringify(r.get('got'))}`,
    );
  });

  // RabbitMQ keeps every field value's type and bytes (rabbit_binary_parser.erl: `S` is a
  // binary, `D` is {Scale, Digits}; the generator writes them back as they came), so py-amqp
  // gets back Decimal('3.14'), Decimal('-1.5') and the exact bytes.
  it('application_headers: decimals and non-UTF-8 longstr bytes arrive unchanged (as RabbitMQ passes them through)', async (t) => {
    const r = await scenario(t, 'headers-exact');
    assert.deepEqual(
      r.get('mismatches'),
      [],
      `sent ${JSON.stringify(r.get('sent'))}\ngot ${JSON.stringify(r.get('got'))}`,
    );
  });

  it('RabbitMQ extensions: consumer cancel notification, direct reply-to, dead lettering with x-death', async (t) => {
    const r = await scenario(t, 'extensions');
    assert.deepEqual(r.get('cancel_notify'), ['doomed-ctag']);
    assert.match(r.get('request_reply_to') as string, /^amq\.rabbitmq\.reply-to\.\S+$/);
    assert.deepEqual(r.get('reply'), ['pong', '42']);
    assert.deepEqual(r.get('dead_info'), ['dead', 'pyamqp.dlx', 'pyamqp.dl-work']);
    assert.deepEqual(r.get('x_death'), {
      count: 1,
      reason: 'rejected',
      queue: 'pyamqp.dl-work',
      time: 'datetime',
      exchange: '',
      'routing-keys': ['pyamqp.dl-work'],
    });
    assert.deepEqual(r.get('x_first_death'), {
      'x-first-death-reason': 'rejected',
      'x-first-death-queue': 'pyamqp.dl-work',
      'x-first-death-exchange': '',
      'x-last-death-reason': 'rejected',
      'x-last-death-queue': 'pyamqp.dl-work',
      'x-last-death-exchange': '',
    });
  });
});
