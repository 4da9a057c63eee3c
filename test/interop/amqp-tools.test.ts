/**
 * Interop with Debian's amqp-tools 0.11 (the command-line tools of rabbitmq-c, the RabbitMQ C
 * client): amqp-declare-queue, amqp-publish, amqp-get, amqp-consume and amqp-delete-queue, each a
 * separate process that connects, does one thing and exits, as shell scripts use them against
 * RabbitMQ. What a tool published is checked with amqplib, and what amqplib published is read
 * back with the tools; the tools' own error lines (`server channel error 406, message: ...`) are
 * compared with RabbitMQ's texts.
 *
 * Without the binaries the tests are skipped, unless INTEROP_REQUIRED=1 (as in CI), where a
 * missing tool is a failure.
 */
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Channel, ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { ChildRun, WAIT_MS } from '../helpers/process.js';
import { amqpConnect, closeQuietly } from '../helpers/raw-amqp.js';

/** Polls an async condition every 20 ms; fails after `timeoutMs`. */
async function until(cond: () => Promise<boolean>, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const TOOLS = ['amqp-declare-queue', 'amqp-publish', 'amqp-get', 'amqp-consume', 'amqp-delete-queue'] as const;
type Tool = (typeof TOOLS)[number];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const missing = TOOLS.filter((t) => !executable(`/usr/bin/${t}`));
const installed = missing.length === 0;
const required = process.env.INTEROP_REQUIRED === '1';
const skip = !installed && !required ? `amqp-tools not installed (no ${missing.join(', ')})` : false;

describe('amqp-tools 0.11 (rabbitmq-c) against Braid', { skip }, () => {
  let tb: TestBroker;
  let port: number;
  const conns: ChannelModel[] = [];

  before(async () => {
    if (!installed) assert.fail(`INTEROP_REQUIRED=1 but ${missing.join(', ')} missing (apt-get install amqp-tools)`);
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    port = tb.broker.address('amqp')!.port;
  });

  after(async () => {
    await closeQuietly(...conns);
    await tb?.stop();
  });

  /** The URL form every tool accepts, with RabbitMQ's default user and the default vhost. */
  const url = (): string => `amqp://guest:guest@127.0.0.1:${port}`;

  /** Runs one tool to its end; returns its exit code and everything it printed. */
  async function run(t: TestContext, tool: Tool, args: string[]): Promise<{ code: number | null; out: string }> {
    const p = new ChildRun(t, `/usr/bin/${tool}`, args);
    const r = await p.exit(tool);
    return { code: r.code, out: p.out };
  }

  async function ok(t: TestContext, tool: Tool, args: string[]): Promise<string> {
    const r = await run(t, tool, args);
    assert.equal(r.code, 0, `${tool} ${args.join(' ')}: exit ${r.code}; it printed:\n${r.out}`);
    return r.out;
  }

  async function channel(): Promise<Channel> {
    const conn = await amqpConnect(port);
    conns.push(conn);
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    return ch;
  }

  async function confirmChannel(): Promise<ConfirmChannel> {
    const conn = await amqpConnect(port);
    conns.push(conn);
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    return ch;
  }

  it('amqp-declare-queue: durable and server-named queues; an inequivalent redeclare is 406', async (t) => {
    const out = await ok(t, 'amqp-declare-queue', ['--url', url(), '-q', 'tools-durable', '-d']);
    assert.equal(out.trim(), 'tools-durable', 'prints the queue name');
    const ch = await channel();
    const q = await ch.checkQueue('tools-durable');
    assert.equal(q.messageCount, 0);

    const named = await ok(t, 'amqp-declare-queue', ['--url', url(), '-q', '']);
    assert.match(named.trim(), /^amq\.gen-[A-Za-z0-9_-]{22}$/, 'a RabbitMQ-style server-generated name');

    // Redeclaring without -d: RabbitMQ's text, reported by the tool.
    const r = await run(t, 'amqp-declare-queue', ['--url', url(), '-q', 'tools-durable']);
    assert.notEqual(r.code, 0, `the inequivalent redeclare must fail; it printed:\n${r.out}`);
    assert.match(
      r.out,
      /server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'tools-durable' in vhost '\/': received 'false' but current is 'true'/,
    );
    await ok(t, 'amqp-delete-queue', ['--url', url(), '-q', 'tools-durable']);
  });

  it('amqp-publish with -C -E -p -t -H: amqplib sees every property; amqp-get reads what amqplib sent', async (t) => {
    const queue = 'tools-props';
    await ok(t, 'amqp-declare-queue', ['--url', url(), '-q', queue]);
    await ok(t, 'amqp-publish', [
      '--url',
      url(),
      '-r',
      queue,
      '-C',
      'application/json',
      '-E',
      'gzip',
      '-p',
      '-t',
      'reply-here',
      '-H',
      'x-trace: abc-123',
      '-H',
      'tenant: acme',
      '-b',
      '{"n":1}',
    ]);

    const ch = await channel();
    const got: Message[] = [];
    for (let i = 0; i < 50 && got.length === 0; i++) {
      const m = await ch.get(queue, { noAck: true });
      if (m) got.push(m);
      else await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(got.length, 1, 'the published message is in the queue');
    const m = got[0]!;
    assert.equal(m.content.toString(), '{"n":1}');
    assert.equal(m.fields.exchange, '');
    assert.equal(m.fields.routingKey, queue);
    assert.equal(m.properties.contentType, 'application/json');
    assert.equal(m.properties.contentEncoding, 'gzip');
    assert.equal(m.properties.deliveryMode, 2, '-p is persistent');
    assert.equal(m.properties.replyTo, 'reply-here');
    assert.deepEqual(m.properties.headers, { 'x-trace': 'abc-123', tenant: 'acme' });

    // The other way: amqplib publishes, amqp-get prints the body and exits 0.
    ch.sendToQueue(queue, Buffer.from('from amqplib'), { contentType: 'text/plain' });
    await until(async () => (await ch.checkQueue(queue)).messageCount === 1, 'amqplib message queued');
    const body = await ok(t, 'amqp-get', ['--url', url(), '-q', queue]);
    assert.equal(body, 'from amqplib');
    assert.equal((await ch.checkQueue(queue)).messageCount, 0, 'amqp-get acks (no-ack get)');

    // An empty queue: basic.get-empty, which tools/get.c reports as exit status 2, no error line.
    const empty = await run(t, 'amqp-get', ['--url', url(), '-q', queue]);
    assert.equal(empty.code, 2, `amqp-get on an empty queue; it printed:\n${empty.out}`);
    assert.equal(empty.out, '');

    // A missing queue: RabbitMQ's 404 text.
    const none = await run(t, 'amqp-get', ['--url', url(), '-q', 'tools-no-such-queue']);
    assert.notEqual(none.code, 0);
    assert.match(
      none.out,
      /server channel error 404, message: NOT_FOUND - no queue 'tools-no-such-queue' in vhost '\/'/,
    );
    await ok(t, 'amqp-delete-queue', ['--url', url(), '-q', queue]);
  });

  it('amqp-consume --count with and without a prefetch: acked messages go, the unacked rest is requeued', async (t) => {
    const queue = 'tools-consume';
    await ok(t, 'amqp-declare-queue', ['--url', url(), '-q', queue]);
    for (let i = 1; i <= 5; i++) await ok(t, 'amqp-publish', ['--url', url(), '-r', queue, '-b', `m${i}\n`]);
    const ch = await channel();
    await until(async () => (await ch.checkQueue(queue)).messageCount === 5, 'five messages queued');

    // -p 1 -c 2: two messages, each piped to `cat` and acked; the tool then exits.
    const first = await ok(t, 'amqp-consume', ['--url', url(), '-q', queue, '-p', '1', '-c', '2', 'cat']);
    assert.equal(first, 'm1\nm2\n');
    await until(async () => (await ch.checkQueue(queue)).messageCount === 3, 'three messages left');

    // No prefetch limit: the broker may push all three; the two handled are acked, the third is
    // requeued when the tool's connection closes, in its place.
    const second = await ok(t, 'amqp-consume', ['--url', url(), '-q', queue, '-c', '2', 'cat']);
    assert.equal(second, 'm3\nm4\n');
    await until(async () => (await ch.checkQueue(queue)).messageCount === 1, 'the unacked one requeued');
    const last = await ch.get(queue, { noAck: true });
    assert.ok(last, 'a message is left');
    assert.equal(last.content.toString(), 'm5\n');

    assert.equal((await ch.checkQueue(queue)).consumerCount, 0, 'the tools’ consumers are gone');
    await ok(t, 'amqp-delete-queue', ['--url', url(), '-q', queue]);
  });

  it('amqp-consume -e amq.topic -r a.# -A: a server-named queue bound with a wildcard, gone after exit', async (t) => {
    const consumer = new ChildRun(t, '/usr/bin/amqp-consume', [
      '--url',
      url(),
      '-e',
      'amq.topic',
      '-r',
      'a.#',
      '-A',
      '-c',
      '3',
      '--', // popt would read the command's own -c
      'sh',
      '-c',
      'cat; echo',
    ]);
    await consumer.waitFor(/Server provided queue name: amq\.gen-\S+/, 'amqp-consume declares a server-named queue');
    const queue = /Server provided queue name: (amq\.gen-\S+)/.exec(consumer.out)![1]!;

    // The binding follows the declare: a mandatory probe is routed once it is in place.
    const pub = await confirmChannel();
    let returned = 0;
    pub.on('return', () => returned++);
    let probes = 0;
    await until(async () => {
      const before = returned;
      probes++;
      pub.publish('amq.topic', 'a.probe', Buffer.from('probe'), { mandatory: true });
      await pub.waitForConfirms();
      return returned === before;
    }, 'the a.# binding');
    pub.publish('amq.topic', 'b.a', Buffer.from('not for a.#'));
    pub.publish('amq.topic', 'a', Buffer.from('a matches a.#'));
    pub.publish('amq.topic', 'a.b.c', Buffer.from('a.b.c matches a.#'));
    await pub.waitForConfirms();

    // -c 3 counts the probe that got through, then the two matching messages.
    await consumer.success('amqp-consume');
    assert.equal(consumer.out.split('\n').filter((l) => l === 'probe').length, 1, `probes sent: ${probes}`);
    assert.match(consumer.out, /^a matches a\.#$/m);
    assert.match(consumer.out, /^a\.b\.c matches a\.#$/m);
    assert.doesNotMatch(consumer.out, /not for a\.#/);

    // The queue was auto-delete (and its owner gone): RabbitMQ deletes it.
    const ch = await channel();
    await until(async () => {
      try {
        await ch.checkQueue(queue);
        return false;
      } catch (err) {
        assert.match((err as Error).message, /404 \(NOT-FOUND\)/);
        return true;
      }
    }, `${queue} deleted`);
  });

  it('amqp-delete-queue: --if-empty refuses with 406, a plain delete prints the count, a missing queue is 0', async (t) => {
    const queue = 'tools-delete';
    await ok(t, 'amqp-declare-queue', ['--url', url(), '-q', queue]);
    await ok(t, 'amqp-publish', ['--url', url(), '-r', queue, '-b', 'one']);
    await ok(t, 'amqp-publish', ['--url', url(), '-r', queue, '-b', 'two']);

    const refused = await run(t, 'amqp-delete-queue', ['--url', url(), '-q', queue, '--if-empty']);
    assert.notEqual(refused.code, 0, `--if-empty on a non-empty queue must fail; it printed:\n${refused.out}`);
    assert.match(
      refused.out,
      /server channel error 406, message: PRECONDITION_FAILED - queue 'tools-delete' in vhost '\/' not empty/,
    );

    const out = await ok(t, 'amqp-delete-queue', ['--url', url(), '-q', queue]);
    assert.equal(out.trim(), '2', 'the number of messages deleted with the queue');
    // queue.delete is idempotent in RabbitMQ: a missing queue is deleted with 0 messages.
    const again = await ok(t, 'amqp-delete-queue', ['--url', url(), '-q', queue]);
    assert.equal(again.trim(), '0');
  });

  it('connection options: --server/--port/--vhost / works; a wrong password and an unknown vhost are refused', async (t) => {
    const queue = 'tools-conn';
    const common = ['--server', '127.0.0.1', '--port', String(port), '--username', 'guest'];
    const out = await ok(t, 'amqp-declare-queue', [...common, '--password', 'guest', '--vhost', '/', '-q', queue]);
    assert.equal(out.trim(), queue);
    // %2f in the URL is the default vhost as well.
    await ok(t, 'amqp-publish', ['--url', `${url()}/%2f`, '-r', queue, '-b', 'via %2f']);
    assert.equal(await ok(t, 'amqp-get', ['--url', url(), '-q', queue]), 'via %2f');

    const badPassword = await run(t, 'amqp-publish', [...common, '--password', 'wrong', '-r', queue, '-b', 'x']);
    assert.notEqual(badPassword.code, 0, `a wrong password must fail; it printed:\n${badPassword.out}`);
    // rabbitmq-c asks for authentication_failure_close, so RabbitMQ answers connection.close 403.
    assert.match(badPassword.out, /ACCESS_REFUSED|403/, `the tool's report:\n${badPassword.out}`);

    const badVhost = await run(t, 'amqp-publish', [
      ...common,
      '--password',
      'guest',
      '--vhost',
      'nope',
      '-r',
      queue,
      '-b',
      'x',
    ]);
    assert.notEqual(badVhost.code, 0, `an unknown vhost must fail; it printed:\n${badVhost.out}`);
    assert.match(badVhost.out, /530|NOT_ALLOWED/, `the tool's report:\n${badVhost.out}`);

    const ch = await channel();
    assert.equal((await ch.checkQueue(queue)).messageCount, 0, 'neither refused publish arrived');
    await ch.deleteQueue(queue);
  });
});
