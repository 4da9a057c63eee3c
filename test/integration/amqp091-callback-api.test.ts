/**
 * The same basics through amqplib's callback API (`amqplib/callback_api`): connect, channels,
 * declare, publish, consume, ack, get, channel errors, and a confirm channel with callbacks.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import amqpcb, { type Channel, type ConfirmChannel, type Connection, type Message } from 'amqplib/callback_api';
import { type AmqpBroker, startAmqpBroker, uniq, within } from '../helpers/amqp.js';

const T = { timeout: 20_000 };

type Coded = Error & { code?: number };

/** A broker and a callback-API connection to it, both closed after the test. */
async function setup(t: TestContext): Promise<{ b: AmqpBroker; conn: Connection }> {
  const b = await startAmqpBroker();
  const conn = await within(
    new Promise<Connection>((resolve, reject) => {
      amqpcb.connect(b.amqpUrl, (err, c) => (err ? reject(err) : resolve(c)));
    }),
    5000,
    'connect',
  );
  conn.on('error', () => {});
  let closed = false;
  conn.on('close', () => {
    closed = true;
  });
  t.after(async () => {
    if (!closed)
      await within(new Promise<void>((resolve) => conn.close(() => resolve())), 3000, 'close').catch(() => {});
    await b.stop();
  });
  return { b, conn };
}

function channel(conn: Connection): Promise<Channel> {
  return within(
    new Promise<Channel>((resolve, reject) => {
      conn.createChannel((err, ch) => {
        if (err) return reject(err);
        ch.on('error', () => {});
        resolve(ch);
      });
    }),
    5000,
    'createChannel',
  );
}

function confirmChannel(conn: Connection): Promise<ConfirmChannel> {
  return within(
    new Promise<ConfirmChannel>((resolve, reject) => {
      conn.createConfirmChannel((err, ch) => {
        if (err) return reject(err);
        ch.on('error', () => {});
        resolve(ch);
      });
    }),
    5000,
    'createConfirmChannel',
  );
}

describe('amqplib callback API', () => {
  test('connect, declare, publish, consume, ack, cancel and close', T, async (t) => {
    const { conn } = await setup(t);
    assert.equal(conn.connection.serverProperties.product, 'Braid');
    const ch = await channel(conn);
    const queue = uniq('cb');
    const declared = await new Promise<{ queue: string; messageCount: number }>((resolve, reject) =>
      ch.assertQueue(queue, { durable: false }, (err, ok) => (err ? reject(err) : resolve(ok))),
    );
    assert.equal(declared.queue, queue);
    assert.equal(declared.messageCount, 0);
    const got: Message[] = [];
    const tag = await new Promise<string>((resolve, reject) =>
      ch.consume(
        queue,
        (m) => {
          if (!m) return;
          got.push(m);
          ch.ack(m);
        },
        {},
        (err, ok) => (err ? reject(err) : resolve(ok.consumerTag)),
      ),
    );
    assert.match(tag, /^amq\.ctag-/);
    for (const body of ['one', 'two', 'three']) ch.sendToQueue(queue, Buffer.from(body), { contentType: 'text/plain' });
    await within(
      new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (got.length >= 3) {
            clearInterval(timer);
            resolve();
          }
        }, 5);
      }),
      5000,
      'three messages',
    );
    assert.deepEqual(
      got.map((m) => m.content.toString()),
      ['one', 'two', 'three'],
    );
    assert.equal(got[0].properties.contentType, 'text/plain');
    await new Promise<void>((resolve, reject) => ch.cancel(tag, (err) => (err ? reject(err) : resolve())));
    const counted = await new Promise<{ messageCount: number; consumerCount: number }>((resolve, reject) =>
      ch.checkQueue(queue, (err, ok) => (err ? reject(err) : resolve(ok))),
    );
    assert.equal(counted.messageCount, 0, 'all acknowledged');
    assert.equal(counted.consumerCount, 0, 'cancelled');
    await new Promise<void>((resolve, reject) => ch.close((err) => (err ? reject(err) : resolve())));
  });

  test('basic.get through callbacks: a message, then false for an empty queue', T, async (t) => {
    const { conn } = await setup(t);
    const ch = await channel(conn);
    const queue = uniq('cbget');
    await new Promise<void>((resolve, reject) =>
      ch.assertQueue(queue, { durable: false }, (err) => (err ? reject(err) : resolve())),
    );
    ch.sendToQueue(queue, Buffer.from('only'));
    const get = () =>
      new Promise<Message | false>((resolve, reject) =>
        ch.get(queue, { noAck: true }, (err, m) => (err ? reject(err) : resolve(m))),
      );
    let m = await get();
    for (let i = 0; i < 200 && !m; i++) m = await get();
    assert.ok(m);
    assert.equal(m.content.toString(), 'only');
    assert.equal(await get(), false);
  });

  test('a channel error reaches the callback with its code, and the channel emits error and close', T, async (t) => {
    const { conn } = await setup(t);
    const ch = await channel(conn);
    const events: string[] = [];
    ch.on('error', (e: Coded) => events.push(`error ${e.code}`));
    const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
    const err = await new Promise<Coded | null>((resolve) => ch.checkQueue('nope', (e) => resolve(e as Coded)));
    assert.equal(err?.code, 404);
    await within(closed, 5000, 'channel close');
    assert.deepEqual(events, ['error 404']);
    const other = await channel(conn);
    await new Promise<void>((resolve, reject) =>
      other.assertQueue('', { exclusive: true }, (e) => (e ? reject(e) : resolve())),
    );
  });

  test('a confirm channel calls back once per publish: ack (null) or nack (an error)', T, async (t) => {
    const { conn } = await setup(t);
    const ch = await confirmChannel(conn);
    const queue = uniq('cbconfirm');
    await new Promise<void>((resolve, reject) =>
      ch.assertQueue(queue, { durable: false, maxLength: 2, overflow: 'reject-publish' }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const results = await Promise.all(
      ['a', 'b', 'c'].map(
        (body) =>
          new Promise<string>((resolve) => {
            ch.sendToQueue(queue, Buffer.from(body), {}, (err) => resolve(err ? 'nack' : 'ack'));
          }),
      ),
    );
    assert.deepEqual(results, ['ack', 'ack', 'nack']);
    ch.sendToQueue(queue, Buffer.from('d'), {});
    const waited = await within(
      new Promise<Error | undefined>((resolve) => ch.waitForConfirms((err) => resolve(err))),
      5000,
      'waitForConfirms',
    );
    assert.ok(waited, 'waitForConfirms reports the nack of the last publish');
  });

  test('waitForConfirms calls back without an error when everything was acked', T, async (t) => {
    const { conn } = await setup(t);
    const ch = await confirmChannel(conn);
    const queue = uniq('cbwait');
    await new Promise<void>((resolve, reject) =>
      ch.assertQueue(queue, { durable: false }, (err) => (err ? reject(err) : resolve())),
    );
    for (let i = 0; i < 50; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
    const err = await within(
      new Promise<Error | undefined>((resolve) => ch.waitForConfirms((e) => resolve(e))),
      5000,
      'waitForConfirms',
    );
    assert.equal(err, undefined);
    const count = await new Promise<number>((resolve, reject) =>
      ch.checkQueue(queue, (e, ok) => (e ? reject(e) : resolve(ok.messageCount))),
    );
    assert.equal(count, 50);
  });

  test('a wrong password reaches the connect callback as an error', T, async (t) => {
    const b = await startAmqpBroker();
    t.after(() => b.stop());
    const err = await within(
      new Promise<Error | null>((resolve) => {
        amqpcb.connect(`amqp://guest:wrong@127.0.0.1:${b.amqpPort}`, (e) => resolve(e));
      }),
      5000,
      'the refusal',
    );
    assert.ok(err);
    assert.match(err.message, /403|ACCESS.REFUSED/);
  });
});
