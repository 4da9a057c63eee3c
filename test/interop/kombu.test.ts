/**
 * Interop with kombu 5.2 (Debian python3-kombu over python3-amqp, run by /usr/bin/python3), the
 * messaging layer of Celery, connected the way Celery configurations spell it:
 * `Connection('amqp://guest:guest@127.0.0.1:PORT//')` (the `//` is vhost `/`). One script holds
 * a scenario per test (argv: port, scenario, work dir) and prints `R <json [name, value]>` lines:
 *
 * - a topic exchange with two bound queues, a Producer publishing json, text and binary bodies
 *   with headers, and a Consumer on both queues draining events and acking;
 * - SimpleQueue put/get/qsize/Empty;
 * - queue arguments Celery deployments use (priority, expiry, TTL, quorum) and a Broadcast queue;
 * - `Connection.ensure` around Producer.publish: once normally, then across a broker restart on
 *   the same port (the test stops the broker, starts another and tells the script through a
 *   marker file), which is what ensure is for: kombu sees the connection fail, calls the errback,
 *   reconnects, redeclares and publishes again.
 *
 * Without kombu the tests are skipped, unless INTEROP_REQUIRED=1 (as in CI), where it is a failure.
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

const installed = spawnSync(PYTHON, ['-c', 'import kombu'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? 'python3-kombu not installed' : false;

const SCRIPT = String.raw`import json
import os
import sys
import time

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.common import Broadcast

port, scenario, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
URL = "amqp://guest:guest@127.0.0.1:%d//" % port


def r(name, value):
    print("R " + json.dumps([name, value], default=repr), flush=True)


def topic():
    with Connection(URL, transport_options={"confirm_publish": True}) as conn:
        conn.connect()
        r("transport", type(conn.transport).__module__)
        ex = Exchange("kombu.news", type="topic", durable=False)
        all_news = Queue("kombu.all-news", ex, routing_key="news.#", durable=False)
        sport = Queue("kombu.sport", ex, routing_key="*.sport", durable=False)
        producer = Producer(conn.channel(), exchange=ex)
        producer.publish(
            {"n": 1, "text": "é"}, routing_key="news.sport", serializer="json", headers={"h": "v"}, declare=[ex, all_news, sport]
        )
        producer.publish("local", routing_key="news.local", content_type="text/plain", content_encoding="utf-8")
        producer.publish(b"\x00\x01\xff", routing_key="weather.sport", content_type="application/octet-stream", content_encoding="binary")
        producer.publish("nobody", routing_key="weather.rain", content_type="text/plain", content_encoding="utf-8")
        got = []

        def on_message(body, message):
            got.append([message.delivery_info["routing_key"], message.content_type, body, message.headers])
            message.ack()

        ch = conn.channel()
        with Consumer(ch, queues=[all_news, sport], callbacks=[on_message], accept=["json", "text/plain", "application/octet-stream"], prefetch_count=10):
            deadline = time.monotonic() + 10
            while len(got) < 4 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
            try:
                conn.drain_events(timeout=0.3)
            except TimeoutError:
                pass
        r("got", sorted(got, key=repr))
        r("left", [q(conn.channel()).queue_declare(passive=True).message_count for q in (all_news, sport)])
        for q in (all_news, sport):
            q(conn.channel()).delete()
        ex(conn.channel()).delete()


def simple():
    with Connection(URL) as conn:
        sq = conn.SimpleQueue("kombu.simple")
        # Before the first get (which starts a consumer that would take it), clear purges it.
        sq.put("to clear")
        r("cleared", sq.clear())
        sq.put({"hello": "world"}, serializer="json")
        sq.put("second")
        r("qsize", sq.qsize())
        m = sq.get(block=True, timeout=5)
        r("first", [m.payload, m.content_type])
        m.ack()
        m = sq.get(block=True, timeout=5)
        r("second", [m.payload, m.content_type])
        m.requeue()
        m = sq.get(block=True, timeout=5)
        r("requeued", [m.payload, m.delivery_info["redelivered"]])
        m.ack()
        try:
            sq.get(block=True, timeout=1)
            r("empty", False)
        except sq.Empty:
            r("empty", True)
        sq.close()
        conn.default_channel.queue_delete("kombu.simple")


def ensure():
    errors = []

    def errback(exc, interval):
        errors.append(type(exc).__name__)

    q = Queue("kombu.ensured", Exchange("kombu.ensure", type="direct", durable=False), routing_key="k", durable=False)
    with Connection(URL, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn)
        publish = conn.ensure(producer, producer.publish, errback=errback, max_retries=10, interval_start=0.2, interval_step=0.2, interval_max=1)
        publish({"n": 1}, exchange=q.exchange, routing_key="k", serializer="json", declare=[q])
        r("first", "published")
        # The test restarts the broker now; wait for its word.
        marker = os.path.join(workdir, "restarted")
        deadline = time.monotonic() + 20
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        r("restarted", os.path.exists(marker))
        publish({"n": 2}, exchange=q.exchange, routing_key="k", serializer="json", declare=[q])
        r("second", "published")
        r("errback", sorted(set(errors)))
        bodies = []
        with Consumer(conn.channel(), queues=[q], callbacks=[lambda body, m: (bodies.append(body), m.ack())], accept=["json"]):
            deadline = time.monotonic() + 10
            while not bodies and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
        r("after_restart", bodies)
        q(conn.channel()).delete()


def celery_style():
    # Queue arguments Celery deployments set: x-max-priority, x-expires, x-message-ttl, a
    # quorum queue (Celery 5.5's quorum support), and a Broadcast (fanout, auto-delete) queue.
    with Connection(URL, transport_options={"confirm_publish": True}) as conn:
        ex = Exchange("kombu.tasks", type="direct")
        prio = Queue("kombu.prio", ex, routing_key="prio", max_priority=10, expires=30, message_ttl=60)
        quorum = Queue("kombu.quorum", ex, routing_key="quorum", queue_arguments={"x-queue-type": "quorum"})
        bcast = Broadcast("kombu.bcast")
        producer = Producer(conn.channel())
        for p in (1, 9, 5):
            producer.publish({"p": p}, exchange=ex, routing_key="prio", priority=p, serializer="json", declare=[prio, quorum, bcast])
        producer.publish({"q": 1}, exchange=ex, routing_key="quorum", serializer="json")
        producer.publish({"b": 1}, exchange=bcast.exchange, routing_key="", serializer="json")
        r("broadcast", [bcast.exchange.type, bcast.auto_delete])
        got = {"prio": [], "quorum": [], "": []}

        def on_message(body, message):
            got[message.delivery_info["routing_key"]].append(body)
            message.ack()

        with Consumer(conn.channel(), queues=[prio, quorum, bcast], callbacks=[on_message], accept=["json"], prefetch_count=1):
            deadline = time.monotonic() + 10
            while sum(map(len, got.values())) < 5 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
        r("got", got)
        for q in (prio, quorum):
            q(conn.channel()).delete()
        ex(conn.channel()).delete()


{"topic": topic, "simple": simple, "ensure": ensure, "celery-style": celery_style}[scenario]()
r("done", True)
`;

describe('kombu 5.2 (Python, Celery’s messaging layer) against Braid', { skip }, () => {
  let tb: TestBroker;
  let port: number;
  let dir: string;

  before(async () => {
    if (!installed) assert.fail(`INTEROP_REQUIRED=1 but ${PYTHON} cannot import kombu (apt-get install python3-kombu)`);
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    port = tb.broker.address('amqp')!.port;
    dir = mkdtempSync(join(tmpdir(), 'braid-kombu-'));
    writeFileSync(join(dir, 'scenarios.py'), SCRIPT);
  });

  after(async () => {
    await tb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function start(t: TestContext, name: string): ChildRun {
    return new ChildRun(t, PYTHON, ['-u', join(dir, 'scenarios.py'), String(port), name, dir]);
  }

  /** Waits for a scenario to end and returns what it reported, by name. */
  async function results(py: ChildRun, name: string, timeoutMs = 20_000): Promise<Map<string, unknown>> {
    const r = await py.exit(`kombu ${name}`, timeoutMs);
    const out = new Map<string, unknown>();
    for (const line of py.out.split('\n')) {
      if (!line.startsWith('R ')) continue;
      const [k, v] = JSON.parse(line.slice(2)) as [string, unknown];
      out.set(k, v);
    }
    assert.equal(r.code, 0, `kombu ${name}: exit ${r.code ?? r.signal}; it printed:\n${py.out}`);
    assert.equal(out.get('done'), true, `kombu ${name} did not finish; it printed:\n${py.out}`);
    return out;
  }

  it('topic exchange round trip: Producer (json, text, binary, headers) and a Consumer on two queues', async (t) => {
    const r = await results(start(t, 'topic'), 'topic');
    assert.equal(r.get('transport'), 'kombu.transport.pyamqp');
    // news.sport matches both news.# and *.sport; weather.rain matches neither.
    assert.deepEqual(r.get('got'), [
      ['news.local', 'text/plain', 'local', {}],
      ['news.sport', 'application/json', { n: 1, text: 'é' }, { h: 'v' }],
      ['news.sport', 'application/json', { n: 1, text: 'é' }, { h: 'v' }],
      ['weather.sport', 'application/octet-stream', "b'\\x00\\x01\\xff'", {}],
    ]);
    assert.deepEqual(r.get('left'), [0, 0], 'every delivery acked');
  });

  it('SimpleQueue: put, clear, qsize, get, ack, requeue, Empty', async (t) => {
    const r = await results(start(t, 'simple'), 'simple');
    assert.equal(r.get('cleared'), 1);
    assert.equal(r.get('qsize'), 2);
    assert.deepEqual(r.get('first'), [{ hello: 'world' }, 'application/json']);
    assert.deepEqual(r.get('second'), ['second', 'text/plain'], 'kombu sends a str body as text/plain');
    assert.deepEqual(r.get('requeued'), ['second', true]);
    assert.equal(r.get('empty'), true);
  });

  it('Celery-style queues: x-max-priority order, x-expires/x-message-ttl, a quorum queue, a Broadcast queue', async (t) => {
    const r = await results(start(t, 'celery-style'), 'celery-style');
    assert.deepEqual(r.get('broadcast'), ['fanout', true]);
    assert.deepEqual(r.get('got'), {
      prio: [{ p: 9 }, { p: 5 }, { p: 1 }],
      quorum: [{ q: 1 }],
      '': [{ b: 1 }],
    });
  });

  it('Connection.ensure(producer.publish): publishes, then reconnects and publishes across a broker restart', async (t) => {
    const py = start(t, 'ensure');
    await py.waitFor(/^R \["first", "published"\]$/m, 'the first ensured publish');
    // Restart on the same port: the old broker closes kombu's connection (320 CONNECTION_FORCED).
    await tb.stop();
    tb = await startBroker({ listeners: { amqp: { port, host: '127.0.0.1' } } });
    writeFileSync(join(dir, 'restarted'), '');
    const r = await results(py, 'ensure');
    t.diagnostic(py.out.trim());
    assert.equal(r.get('restarted'), true);
    assert.equal(r.get('second'), 'published');
    assert.ok((r.get('errback') as string[]).length > 0, 'kombu saw the connection fail and retried');
    assert.deepEqual(r.get('after_restart'), [{ n: 2 }], 'redeclared and delivered by the new broker');
  });
});
