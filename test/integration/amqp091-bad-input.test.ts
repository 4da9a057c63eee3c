/**
 * Bad AMQP 0-9-1 input gets the refusal RabbitMQ gives, byte for byte where it matters: a wrong
 * protocol header is answered with a protocol header and a closed socket; a broken frame or a
 * method out of place is a connection exception (connection.close with the reply code, then the
 * socket is closed once the client answers close-ok). After each case a second, healthy amqplib
 * connection still publishes and consumes, the broker logged the refusal, and nothing threw.
 *
 * The RabbitMQ references (rabbitmq-server, deps/rabbit/src/rabbit_reader.erl and
 * deps/rabbit_common/src/rabbit_command_assembler.erl, rabbit_channel.erl, rabbit_misc.erl):
 * - frame-end octet ≠ 0xCE: fatal_frame_error({invalid_frame_end_marker, _}) → 501 FRAME_ERROR;
 * - payload larger than the negotiated frame_max: fatal_frame_error({frame_too_large, ...}) → 501;
 * - unknown frame type: frame_error(unknown_frame) → 501;
 * - method arguments that do not decode (truncated): rabbit_misc:frame_error "cannot decode" →
 *   501 FRAME_ERROR (not 502 SYNTAX_ERROR, which the spec keeps for illegal field values);
 * - unknown class / method id: RabbitMQ's lookup_method_name exits and drops the socket; the
 *   spec's code for it is 540 NOT_IMPLEMENTED, which is what is asserted here;
 * - a method on a channel never opened: "expected 'channel.open'" → 504 CHANNEL_ERROR;
 *   channel.open twice: "second 'channel.open' seen" → 504 CHANNEL_ERROR;
 * - content header or body where a method is expected, or a method where the content header or
 *   body is expected: unexpected_frame → 505 UNEXPECTED_FRAME;
 * - a body frame longer than the rest of the declared body size: "content body frame exceeds
 *   remaining content size" → 501 FRAME_ERROR;
 * - a heartbeat on a channel other than 0: the spec (§4.2.7) says 501 FRAME_ERROR, RabbitMQ
 *   sends 505 UNEXPECTED_FRAME: either is accepted;
 * - a channel frame before connection.open: before tune-ok RabbitMQ closes the socket without a
 *   word (handshake_error); after tune-ok it sends connection.close 505.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { waitFor } from '../helpers/mqtt.js';
import {
  AMQP10_SASL_HEADER,
  assertAmqpServes,
  basicPublish,
  basicQos,
  bodyFrame,
  CODE,
  channelOpen,
  codeName,
  connectionClose,
  connectionCloseOk,
  contentHeader,
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  frame,
  HARD_ERRORS,
  heartbeatFrame,
  isMethod,
  methodFrame,
  methodPayload,
  PROTOCOL_HEADER,
  publish,
  RawAmqp,
  shortstr,
  u8,
  u16,
} from '../helpers/raw-amqp.js';

const T = { timeout: 30_000 };

describe('AMQP 0-9-1 bad input', () => {
  let tb: TestBroker;
  let port: number;
  const thrown: unknown[] = [];
  const onThrown = (err: unknown) => thrown.push(err);

  before(async () => {
    process.on('uncaughtException', onThrown);
    process.on('unhandledRejection', onThrown);
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    port = tb.broker.address('amqp')!.port;
  });

  after(async () => {
    process.off('uncaughtException', onThrown);
    process.off('unhandledRejection', onThrown);
    await tb?.stop();
  });

  /** A raw connection, destroyed when the test ends. */
  async function raw(t: TestContext): Promise<RawAmqp> {
    const r = await RawAmqp.open(port);
    t.after(() => r.close());
    return r;
  }

  /** The broker logged a line matching `re` since `mark`. */
  async function assertLogged(mark: number, re: RegExp, what: string): Promise<void> {
    try {
      await waitFor(() => tb.logs.slice(mark).some((l) => re.test(l)), 5000, what);
    } catch {
      assert.fail(`${what}: no log line matching ${re}; the broker logged:\n${tb.logs.slice(mark).join('')}`);
    }
  }

  /** After a case: nothing threw, and a fresh amqplib connection publishes and consumes. */
  async function assertHealthy(): Promise<void> {
    assert.deepEqual(thrown, [], 'the broker threw');
    await assertAmqpServes(port);
  }

  const codeRe = (codes: number[]): RegExp => new RegExp(codes.flatMap((c) => [`\\b${c}\\b`, codeName(c)]).join('|'));

  interface HardCase {
    /** Frame-max to negotiate (default: the server's). */
    frameMax?: number;
    /** Open channel 1 first. */
    channel?: boolean;
    /** The bad input, sent after the handshake. */
    bytes: Buffer;
    code: number | number[];
    /** The class and method connection.close must blame, when one method is to blame. */
    blame?: [classId: number, methodId: number];
    /** The reply text (RabbitMQ's wording, after the `NAME - ` prefix). */
    text?: RegExp;
  }

  async function hardCase(t: TestContext, what: string, c: HardCase): Promise<void> {
    const r = await raw(t);
    await r.handshake(c.frameMax === undefined ? {} : { frameMax: c.frameMax });
    if (c.channel) await r.openChannel(1);
    const mark = tb.logs.length;
    r.send(c.bytes);
    const close = await r.expectHardClose(c.code, what);
    if (c.blame) {
      assert.deepEqual([close.classId, close.methodId], c.blame, `${what}: class-id and method-id of connection.close`);
    }
    if (c.text) assert.match(close.replyText, c.text, `${what}: reply-text`);
    await assertLogged(mark, codeRe([close.replyCode]), `${what}: the refusal is logged`);
    await assertHealthy();
  }

  // -------------------------------------------------------------------------------------------
  // The protocol header.

  const refusals: Array<[label: string, header: string, answers: Buffer[]]> = [
    // {0,0,9,2}: minor ≥ 9 → RabbitMQ answers with the 0-9-1 header.
    ['AMQP 0-9-2', 'AMQP\x00\x00\x09\x02', [PROTOCOL_HEADER]],
    // Not AMQP at all: RabbitMQ 3 answered 0-9-1, RabbitMQ 4 answers AMQP 1.0 SASL.
    ['HTTP/1.1', 'HTTP/1.1', [PROTOCOL_HEADER, AMQP10_SASL_HEADER]],
    // AMQP 0-8's header: refused the same way.
    ['AMQP 0-8 (AMQP 1 1 8 0)', 'AMQP\x01\x01\x08\x00', [PROTOCOL_HEADER, AMQP10_SASL_HEADER]],
  ];
  for (const [label, header, answers] of refusals) {
    it(`answers a ${label} header with a protocol header and closes the socket`, T, async (t) => {
      const r = await raw(t);
      const mark = tb.logs.length;
      r.send(header);
      await r.waitClosed(10_000, `${label}: the server to close the socket`);
      assert.ok(r.protocolHeader, `${label}: the server sent no protocol header; it sent ${r.describe()}`);
      assert.ok(
        answers.some((a) => a.equals(r.protocolHeader!)),
        `${label}: the server answered ${JSON.stringify(r.protocolHeader.toString('latin1'))}, expected ${answers
          .map((a) => JSON.stringify(a.toString('latin1')))
          .join(' or ')}`,
      );
      assert.equal(r.received.length, 8, `${label}: nothing but the protocol header was sent`);
      await assertLogged(mark, /protocol|header|version/i, `${label}: the refusal is logged`);
      await assertHealthy();
    });
  }

  it('answers the AMQP 0-9 header (AMQP 1 1 0 9) with 0-9-1: connection.start, or the 0-9-1 header', T, async (t) => {
    // RabbitMQ treats 0-9's header as 0-9-1 (version_negotiation({1,1,0,9}) starts a 0-9-1
    // connection); a server that does not must answer with its own header and close.
    const r = await raw(t);
    r.send('AMQP\x01\x01\x00\x09');
    await waitFor(
      () => r.closed || r.history.some((f) => isMethod(f, 10, 10)),
      10_000,
      'connection.start or a closed socket',
    );
    if (r.history.some((f) => isMethod(f, 10, 10))) {
      assert.equal(r.protocolHeader, undefined);
    } else {
      assert.ok(r.protocolHeader?.equals(PROTOCOL_HEADER), `the server answered ${r.describe()}`);
    }
    r.close();
    await assertHealthy();
  });

  // -------------------------------------------------------------------------------------------
  // Frames.

  it('a frame whose frame-end octet is not 0xCE → connection.close 501 FRAME_ERROR', T, async (t) => {
    await hardCase(t, 'bad frame-end', {
      channel: true,
      bytes: frame(FRAME_METHOD, 1, methodPayload(60, 10, Buffer.alloc(7)), 0x00),
      code: CODE.FRAME_ERROR,
    });
  });

  it('a frame larger than the negotiated frame_max → connection.close 501 FRAME_ERROR', T, async (t) => {
    await hardCase(t, 'frame larger than frame_max', {
      frameMax: 4096,
      channel: true,
      bytes: frame(FRAME_METHOD, 1, Buffer.alloc(10_000)),
      code: CODE.FRAME_ERROR,
    });
  });

  it('a frame of an unknown type → connection.close 501 FRAME_ERROR', T, async (t) => {
    await hardCase(t, 'unknown frame type', { bytes: frame(9, 0, Buffer.from('abc')), code: CODE.FRAME_ERROR });
  });

  it('a method whose arguments are cut short → connection.close 501 FRAME_ERROR', T, async (t) => {
    // basic.publish: reserved short, then an exchange shortstr of length 10 with 3 octets only.
    await hardCase(t, 'truncated method', {
      channel: true,
      bytes: methodFrame(1, 60, 40, u16(0), u8(10), Buffer.from('amq')),
      code: CODE.FRAME_ERROR,
    });
  });

  it('an unknown class / method id on a channel → connection.close 540 NOT_IMPLEMENTED', T, async (t) => {
    await hardCase(t, 'unknown class 99 method 99', {
      channel: true,
      bytes: methodFrame(1, 99, 99),
      code: CODE.NOT_IMPLEMENTED,
    });
  });

  it('an unknown method of class connection on channel 0 → connection.close 540 NOT_IMPLEMENTED', T, async (t) => {
    await hardCase(t, 'unknown method connection.99', { bytes: methodFrame(0, 10, 99), code: CODE.NOT_IMPLEMENTED });
  });

  it(
    'a method on a channel that was never opened → connection.close 504 CHANNEL_ERROR blaming the method',
    T,
    async (t) => {
      await hardCase(t, 'basic.qos on channel 7, never opened', {
        bytes: basicQos(7, 10),
        code: CODE.CHANNEL_ERROR,
        blame: [60, 10],
        text: /expected 'channel\.open'/,
      });
    },
  );

  it(
    'channel.open twice on the same channel → connection.close 504 CHANNEL_ERROR blaming channel.open',
    T,
    async (t) => {
      await hardCase(t, 'second channel.open', {
        channel: true,
        bytes: channelOpen(1),
        code: CODE.CHANNEL_ERROR,
        blame: [20, 10],
        text: /second 'channel\.open' seen/,
      });
    },
  );

  it('a content header with no basic.publish before it → connection.close 505 UNEXPECTED_FRAME', T, async (t) => {
    await hardCase(t, 'content header without publish', {
      channel: true,
      bytes: contentHeader(1, 5),
      code: CODE.UNEXPECTED_FRAME,
    });
  });

  it('a body frame with no basic.publish before it → connection.close 505 UNEXPECTED_FRAME', T, async (t) => {
    await hardCase(t, 'body without publish', {
      channel: true,
      bytes: bodyFrame(1, 'hello'),
      code: CODE.UNEXPECTED_FRAME,
    });
  });

  it('a method where the content header was expected → connection.close 505 UNEXPECTED_FRAME', T, async (t) => {
    await hardCase(t, 'method instead of content header', {
      channel: true,
      bytes: Buffer.concat([basicPublish(1, 'amq.direct', 'nowhere'), basicQos(1, 1)]),
      code: CODE.UNEXPECTED_FRAME,
    });
  });

  it('a method where the content body was expected → connection.close 505 UNEXPECTED_FRAME', T, async (t) => {
    await hardCase(t, 'method instead of body', {
      channel: true,
      bytes: Buffer.concat([basicPublish(1, 'amq.direct', 'nowhere'), contentHeader(1, 10), basicQos(1, 1)]),
      code: CODE.UNEXPECTED_FRAME,
    });
  });

  it('a body frame longer than the declared body size → connection.close 501 FRAME_ERROR', T, async (t) => {
    await hardCase(t, 'body larger than declared', {
      channel: true,
      bytes: Buffer.concat([
        basicPublish(1, 'amq.direct', 'nowhere'),
        contentHeader(1, 3),
        bodyFrame(1, 'much too long'),
      ]),
      code: CODE.FRAME_ERROR,
    });
  });

  it('a heartbeat frame on channel 1 → connection.close 501 FRAME_ERROR (spec) or 505 (RabbitMQ)', T, async (t) => {
    await hardCase(t, 'heartbeat on channel 1', {
      channel: true,
      bytes: heartbeatFrame(1),
      code: [CODE.FRAME_ERROR, CODE.UNEXPECTED_FRAME],
    });
  });

  it('a heartbeat with a payload → connection.close 501 FRAME_ERROR', T, async (t) => {
    // RabbitMQ: analyze_frame(?FRAME_HEARTBEAT, <<>>) only; anything else is an unknown frame.
    await hardCase(t, 'heartbeat with payload', {
      bytes: frame(FRAME_HEARTBEAT, 0, Buffer.from('xx')),
      code: CODE.FRAME_ERROR,
    });
  });

  // -------------------------------------------------------------------------------------------
  // The connection state machine.

  it(
    'channel.open before tune-ok → the socket is closed (RabbitMQ: silently; or connection.close 504/505)',
    T,
    async (t) => {
      const r = await raw(t);
      await r.handshake({ stopAfter: 'tune' });
      r.send(channelOpen(1));
      const close = await r.connectionClose();
      if (close) {
        assert.ok(
          ([CODE.COMMAND_INVALID, CODE.CHANNEL_ERROR, CODE.UNEXPECTED_FRAME] as number[]).includes(close.replyCode),
          `connection.close ${close.replyCode} ${close.replyText}`,
        );
        r.send(connectionCloseOk());
      }
      await r.waitClosed();
      assert.ok(!r.history.some((f) => isMethod(f, 20, 11)), 'no channel.open-ok');
      await assertHealthy();
    },
  );

  it('channel.open after tune-ok, before connection.open → connection.close 505 UNEXPECTED_FRAME', T, async (t) => {
    const r = await raw(t);
    await r.handshake({ stopAfter: 'tune-ok' });
    const mark = tb.logs.length;
    r.send(channelOpen(1));
    const close = await r.expectHardClose(CODE.UNEXPECTED_FRAME, 'channel.open before connection.open');
    assert.ok(!r.history.some((f) => isMethod(f, 20, 11)), 'no channel.open-ok');
    await assertLogged(mark, codeRe([close.replyCode]), 'the refusal is logged');
    await assertHealthy();
  });

  it(
    'after its connection.close the server discards everything but close / close-ok, then closes on close-ok',
    T,
    async (t) => {
      const r = await raw(t);
      await r.handshake();
      await r.openChannel(1);
      r.send(basicQos(7, 10));
      const close = await r.connectionClose();
      assert.equal(close?.replyCode, CODE.CHANNEL_ERROR, `received ${r.describe()}`);
      const seen = r.history.length;
      // Spec (connection.close): "After sending this method, any received methods except Close and
      // Close-OK MUST be discarded."
      r.send(Buffer.concat([channelOpen(2), basicQos(1, 5), publish(1, 'amq.direct', 'k', 'ignored')]));
      r.send(connectionCloseOk());
      await r.waitClosed();
      const after = r.history.slice(seen).filter((f) => f.type !== FRAME_HEARTBEAT);
      assert.deepEqual(
        after.map((f) => [f.type, f.channel]),
        [],
        `nothing answered the discarded methods; received ${r.describe()}`,
      );
      await assertHealthy();
    },
  );

  it('a client connection.close is answered with close-ok, then the server closes the socket', T, async (t) => {
    const r = await raw(t);
    await r.handshake();
    await r.openChannel(1);
    r.send(connectionClose(200, 'Goodbye'));
    await r.nextMethod(10, 51, 0);
    await r.waitClosed();
    await assertHealthy();
  });

  // -------------------------------------------------------------------------------------------
  // Random input after a good handshake.

  it('random input after a good handshake: a hard connection.close or a closed socket, never a crash', {
    timeout: 180_000,
  }, async (t) => {
    const frameArb = fc
      .record({
        type: fc.oneof(
          fc.constantFrom(FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT),
          fc.integer({ min: 0, max: 255 }),
        ),
        channel: fc.integer({ min: 0, max: 3 }),
        payload: fc.uint8Array({ maxLength: 64 }),
        end: fc.oneof(
          { weight: 4, arbitrary: fc.constant(0xce) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
        ),
      })
      .map((f) => frame(f.type, f.channel, Buffer.from(f.payload), f.end));
    const valid = [
      publish(1, 'amq.direct', 'k', 'hello'),
      channelOpen(2),
      basicQos(1, 5),
      methodFrame(1, 50, 10, u16(0), shortstr('q'), u8(0), Buffer.from([0, 0, 0, 0])),
      methodFrame(1, 40, 10, u16(0), shortstr('x'), shortstr('direct'), u8(0), Buffer.from([0, 0, 0, 0])),
    ];
    const mutatedArb = fc
      .record({
        base: fc.constantFrom(...valid),
        edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      })
      .map(({ base, edits }) => {
        const b = Buffer.from(base);
        for (const [i, v] of edits) b[i % b.length] = v;
        return b;
      });
    const garbageArb = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.array(frameArb, { minLength: 1, maxLength: 5 }).map((fs) => Buffer.concat(fs)),
      mutatedArb,
    );
    // Whatever state the garbage leaves the frame parser in, this completes any frame of at most
    // frame_max (4096) octets, and then reads as a frame header of size 0xCECECECE > frame_max.
    const filler = Buffer.alloc(4096 + 16, 0xce);

    const outcomes = new Map<string, number>();
    // After a fatal frame error the server may hold the socket a while before closing it (RabbitMQ
    // sleeps 3 s in fatal_frame_error): the closes are awaited together at the end, not one by one.
    const closing: Array<{ r: RawAmqp; input: string }> = [];
    await fc.assert(
      fc.asyncProperty(garbageArb, async (garbage) => {
        const r = await RawAmqp.open(port);
        let handedOver = false;
        try {
          await r.handshake({ frameMax: 4096 });
          await r.openChannel(1);
          r.send(garbage);
          r.send(filler);
          const close = await r.connectionClose(10_000);
          if (close) {
            assert.ok(
              HARD_ERRORS.has(close.replyCode),
              `connection.close ${close.replyCode} ${close.replyText} is not a hard error; input ${garbage.toString('hex')}`,
            );
            r.send(connectionCloseOk());
          }
          const key = close ? `${close.replyCode}` : 'socket closed';
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          closing.push({ r, input: garbage.toString('hex') });
          handedOver = true;
        } finally {
          if (!handedOver) r.close();
        }
        await assertHealthy();
      }),
      { seed: 20_260_622, numRuns: 50 },
    );
    t.after(() => {
      for (const { r } of closing) r.close();
    });
    // No connection is left dangling: the server closes every one of them.
    const stuck: string[] = [];
    await Promise.all(
      closing.map(({ r, input }) =>
        r.waitClosed(15_000).catch(() => {
          stuck.push(input);
        }),
      ),
    );
    assert.deepEqual(stuck, [], 'the server left these connections open (inputs in hex)');
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    await assertHealthy();
  });
});
