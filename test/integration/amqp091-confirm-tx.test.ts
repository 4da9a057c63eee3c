/**
 * Publisher confirms ([rabbitmq confirms], confirm.select) and transactions (AMQP 0-9-1 §1.9
 * tx class) with amqplib. amqplib has no tx API, so tx.* goes through its channel RPC.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Channel, ConfirmChannel, Options } from 'amqplib';
import {
  type AmqpHarness,
  amqpHarness,
  channelError,
  confirmSelect,
  consume,
  txCommit,
  txRollback,
  txSelect,
  uniq,
  waitFor,
  within,
} from '../helpers/amqp.js';

const T = { timeout: 20_000 };

/** Publishes on a confirm channel; resolves 'ack' or 'nack' from the confirm callback. */
function confirmOf(ch: ConfirmChannel, exchange: string, key: string, body: string, opts: Options.Publish = {}) {
  return within(
    new Promise<'ack' | 'nack'>((resolve) => {
      ch.publish(exchange, key, Buffer.from(body), opts, (err) => resolve(err ? 'nack' : 'ack'));
    }),
    5000,
    'the confirm',
  );
}

/** Ready messages of `queue`, by a passive declare on a throwaway channel. */
async function ready(h: AmqpHarness, queue: string): Promise<number> {
  const ch = await h.channel();
  const n = (await ch.checkQueue(queue)).messageCount;
  await ch.close();
  return n;
}

/** A fresh queue holding m0..m(n-1). */
async function filled(h: AmqpHarness, n: number): Promise<string> {
  const ch = await h.confirmChannel();
  const queue = uniq('q');
  await ch.assertQueue(queue, { durable: false });
  for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
  await ch.waitForConfirms();
  await ch.close();
  return queue;
}

/** `n` unacknowledged deliveries of `queue` on `ch`. */
async function take(ch: Channel, queue: string, n: number) {
  const c = await consume(ch, queue);
  await c.waitCount(n);
  return c.msgs;
}

describe('[rabbitmq confirms] publisher confirms', () => {
  test('every publish is acknowledged, with delivery tags counting up from 1', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const acked: number[] = [];
    ch.on('ack', (f: { deliveryTag: number; multiple: boolean }) => acked.push(f.deliveryTag));
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => confirmOf(ch, '', queue, `m${i}`)));
    assert.deepEqual(results, ['ack', 'ack', 'ack', 'ack', 'ack']);
    assert.ok(acked.length > 0);
    for (let i = 1; i < acked.length; i++) assert.ok(acked[i] > acked[i - 1], `tags increase: ${acked}`);
    assert.equal(acked.at(-1), 5, 'the last ack covers tag 5');
    assert.ok(acked.every((tag) => tag >= 1 && tag <= 5));
  });

  test('waitForConfirms resolves once everything published is confirmed and enqueued', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const queue = uniq('wfc');
    await ch.assertQueue(queue, { durable: false });
    for (let i = 0; i < 200; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
    await within(ch.waitForConfirms(), 10_000, 'waitForConfirms');
    assert.equal(await ready(h, queue), 200);
  });

  test('confirm.select is idempotent on a confirm channel', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    await confirmSelect(ch);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    assert.equal(await confirmOf(ch, '', queue, 'x'), 'ack');
  });

  test('[rabbitmq maxlength] a publish refused by x-overflow reject-publish is nacked', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const queue = uniq('full');
    await ch.assertQueue(queue, { durable: false, maxLength: 1, overflow: 'reject-publish' });
    assert.equal(await confirmOf(ch, '', queue, 'first'), 'ack');
    assert.equal(await confirmOf(ch, '', queue, 'second'), 'nack');
    const m = await ch.get(queue, { noAck: true });
    assert.ok(m);
    assert.equal(m.content.toString(), 'first');
    assert.equal(await ch.get(queue), false);
    assert.equal(await confirmOf(ch, '', queue, 'third'), 'ack', 'room again once the queue drained');
  });

  test('an unroutable message is acked (RabbitMQ confirms it once routing found no queue)', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    assert.equal(await confirmOf(ch, 'amq.direct', 'nobody-home', 'x'), 'ack');
  });

  test('mandatory and unroutable: basic.return comes before basic.ack', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const order: string[] = [];
    ch.on('return', (m: { fields: { replyCode: number } }) => order.push(`return ${m.fields.replyCode}`));
    const result = await confirmOf(ch, 'amq.direct', 'nobody-home', 'x', { mandatory: true });
    order.push(result);
    assert.deepEqual(order, ['return 312', 'ack']);
  });

  test('a message routed to several queues is acked once', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const x = uniq('fan');
    await ch.assertExchange(x, 'fanout', { durable: false });
    const qs = [uniq('a'), uniq('b'), uniq('c')];
    for (const q of qs) {
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, '');
    }
    let acks = 0;
    ch.on('ack', () => acks++);
    assert.equal(await confirmOf(ch, x, '', 'to-all'), 'ack');
    for (const q of qs) assert.equal(await ready(h, q), 1);
    assert.equal(acks, 1);
  });
});

describe('transactions (§1.9 tx class)', () => {
  test('published messages are enqueued on commit, not before; rollback discards them', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const queue = uniq('txq');
    await ch.assertQueue(queue, { durable: false });
    await txSelect(ch);
    for (let i = 0; i < 3; i++) ch.sendToQueue(queue, Buffer.from(`c${i}`));
    await ch.checkQueue(queue); // the publishes are processed by now
    assert.equal(await ready(h, queue), 0, 'nothing before commit');
    await txCommit(ch);
    assert.equal(await ready(h, queue), 3);
    ch.sendToQueue(queue, Buffer.from('r0'));
    ch.sendToQueue(queue, Buffer.from('r1'));
    await txRollback(ch);
    await txCommit(ch); // an empty transaction
    assert.equal(await ready(h, queue), 3, 'the rolled back messages are gone');
    const got: string[] = [];
    for (let m = await ch.get(queue, { noAck: true }); m; m = await ch.get(queue, { noAck: true })) {
      got.push(m.content.toString());
    }
    await txCommit(ch);
    assert.deepEqual(got, ['c0', 'c1', 'c2']);
  });

  test('uncommitted publishes are dropped when the channel closes', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const queue = uniq('txclose');
    await ch.assertQueue(queue, { durable: false });
    await txSelect(ch);
    ch.sendToQueue(queue, Buffer.from('lost'));
    await ch.close();
    assert.equal(await ready(h, queue), 0);
  });

  test('acks in a transaction take effect on commit; after rollback the messages stay unacked', T, async (t) => {
    const h = await amqpHarness(t);
    const queue = await filled(h, 2);

    // Ack, roll back, close: the acks never happened, so both messages are requeued.
    const a = await h.channel();
    await txSelect(a);
    const first = await take(a, queue, 2);
    for (const m of first) a.ack(m);
    await txRollback(a);
    await a.close();
    assert.equal(await ready(h, queue), 2, 'rolled-back acks leave the messages unacked');

    // Ack, close without commit: the same.
    const b = await h.channel();
    await txSelect(b);
    const second = await take(b, queue, 2);
    assert.ok(second.every((m) => m.fields.redelivered));
    b.ack(second[1], true);
    await b.checkQueue(queue);
    await b.close();
    assert.equal(await ready(h, queue), 2, 'uncommitted acks do nothing');

    // Ack, roll back, ack again, commit: settled.
    const c = await h.channel();
    await txSelect(c);
    const third = await take(c, queue, 2);
    for (const m of third) c.ack(m);
    await txRollback(c);
    for (const m of third) c.ack(m);
    await txCommit(c);
    await c.close();
    assert.equal(await ready(h, queue), 0, 'committed acks settle the deliveries');
  });

  test('a reject with requeue in a transaction happens on commit', T, async (t) => {
    const h = await amqpHarness(t);
    const queue = await filled(h, 1);
    const ch = await h.channel();
    await txSelect(ch);
    const m = await ch.get(queue);
    assert.ok(m);
    ch.reject(m, true);
    await ch.checkQueue(queue);
    assert.equal(await ready(h, queue), 0, 'still unacked before commit');
    const redelivered = await consume(await h.channel(), queue, { noAck: true });
    await txCommit(ch);
    await redelivered.waitCount(1);
    assert.equal(redelivered.msgs[0].fields.redelivered, true);
  });

  test('tx.commit and tx.rollback on a non-transactional channel are 406', T, async (t) => {
    const h = await amqpHarness(t);
    const a = await h.channel();
    await channelError(a, () => txCommit(a), 406, /channel is not transactional/);
    const b = await h.channel();
    await channelError(b, () => txRollback(b), 406, /channel is not transactional/);
  });

  test('[rabbitmq] tx.select on a confirm channel and confirm.select on a tx channel are 406', T, async (t) => {
    const h = await amqpHarness(t);
    const c = await h.confirmChannel();
    await channelError(c, () => txSelect(c), 406, /cannot switch from confirm to tx mode/);
    const x = await h.channel();
    await txSelect(x);
    await txSelect(x); // selecting twice is fine
    await channelError(x, () => confirmSelect(x), 406, /cannot switch from tx to confirm mode/);
  });

  test('mandatory unroutable messages in a transaction are returned at commit', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    let returned = 0;
    ch.on('return', () => returned++);
    await txSelect(ch);
    ch.publish('amq.direct', 'nobody-home', Buffer.from('x'), { mandatory: true });
    await ch.checkExchange('amq.direct');
    assert.equal(returned, 0, 'nothing is routed before commit');
    await txCommit(ch);
    await waitFor(() => returned === 1, 5000, 'the basic.return');
  });
});
