/**
 * A raw MQTT client over TCP, for what mqtt.js will not send (or hides): packets are built byte
 * by byte here, independently of the broker's own codec, and every packet the server sends is
 * kept as type, flags and body for the test to inspect.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { waitFor } from './mqtt.js';

export interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}

/** An MQTT 5.0 property: its identifier and value (a user property is a [key, value] pair). */
export type PropValue = number | string | Buffer | [string, string];
export type Prop = [id: number, value: PropValue];

// ---------------------------------------------------------------------------------------------
// Encoding and decoding primitives.

export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
export const str = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
export function vbi(n: number): Buffer {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return Buffer.from(out);
}
export function readVbi(b: Buffer, pos: number): [value: number, next: number] {
  let v = 0;
  let mul = 1;
  let d: number;
  do {
    d = b[pos++]!;
    v += (d & 0x7f) * mul;
    mul *= 128;
  } while (d & 0x80);
  return [v, pos];
}
/** A whole packet: the first byte of the fixed header, the remaining length, then the parts. */
export function frame(first: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([first]), vbi(body.length), body]);
}

const STRING_PROPS = new Set([0x03, 0x08, 0x12, 0x15, 0x1a, 0x1c, 0x1f]);
const BINARY_PROPS = new Set([0x09, 0x16]);
const U16_PROPS = new Set([0x13, 0x21, 0x22, 0x23]);
const U32_PROPS = new Set([0x02, 0x11, 0x18, 0x27]);

/** A 5.0 property list (its length first), in the order given. */
export function encodeProps(props: Prop[]): Buffer {
  const parts = props.map(([id, v]) => {
    let value: Buffer;
    if (id === 0x26) {
      const [k, val] = v as [string, string];
      value = Buffer.concat([str(k), str(val)]);
    } else if (STRING_PROPS.has(id)) value = str(v as string);
    else if (BINARY_PROPS.has(id)) value = Buffer.concat([u16((v as Buffer).length), v as Buffer]);
    else if (U16_PROPS.has(id)) value = u16(v as number);
    else if (U32_PROPS.has(id)) value = u32(v as number);
    else if (id === 0x0b) value = vbi(v as number);
    else value = Buffer.from([v as number]);
    return Buffer.concat([Buffer.from([id]), value]);
  });
  const body = Buffer.concat(parts);
  return Buffer.concat([vbi(body.length), body]);
}
/** The 5.0 property list at `pos`, as an ordered list, and the position after it. */
export function decodeProps(b: Buffer, pos: number): [props: Prop[], next: number] {
  const [len, start] = readVbi(b, pos);
  const stop = start + len;
  const out: Prop[] = [];
  pos = start;
  while (pos < stop) {
    const id = b[pos++]!;
    if (id === 0x26) {
      const kl = b.readUInt16BE(pos);
      const k = b.toString('utf8', pos + 2, pos + 2 + kl);
      pos += 2 + kl;
      const vl = b.readUInt16BE(pos);
      out.push([id, [k, b.toString('utf8', pos + 2, pos + 2 + vl)]]);
      pos += 2 + vl;
    } else if (STRING_PROPS.has(id)) {
      const l = b.readUInt16BE(pos);
      out.push([id, b.toString('utf8', pos + 2, pos + 2 + l)]);
      pos += 2 + l;
    } else if (BINARY_PROPS.has(id)) {
      const l = b.readUInt16BE(pos);
      out.push([id, b.subarray(pos + 2, pos + 2 + l)]);
      pos += 2 + l;
    } else if (U16_PROPS.has(id)) {
      out.push([id, b.readUInt16BE(pos)]);
      pos += 2;
    } else if (U32_PROPS.has(id)) {
      out.push([id, b.readUInt32BE(pos)]);
      pos += 4;
    } else if (id === 0x0b) {
      const [v, next] = readVbi(b, pos);
      out.push([id, v]);
      pos = next;
    } else {
      out.push([id, b[pos++]!]);
    }
  }
  return [out, stop];
}

/** The property list of a packet: 5.0 has one (`props`, empty by default), 3.1.1 none. */
const propsFor = (v: 4 | 5, props: Prop[] = []): Buffer => (v === 5 ? encodeProps(props) : Buffer.alloc(0));

// ---------------------------------------------------------------------------------------------
// Packets a client sends.

export interface ConnectOptions {
  v: 4 | 5;
  clientId: string;
  /** Clean Session (3.1.1) / Clean Start (5.0); default true. */
  clean?: boolean;
  /** Keep Alive in seconds; default 60. */
  keepAlive?: number;
  /** 5.0 only: the Session Expiry Interval property. */
  sessionExpiry?: number;
  /** 5.0 only: our own Receive Maximum property. */
  receiveMaximum?: number;
}

/** CONNECT for 3.1.1 or 5.0 with no will, user name or password. */
export function connectPacket(o: ConnectOptions): Buffer {
  const props: Prop[] = [];
  if (o.sessionExpiry !== undefined) props.push([0x11, o.sessionExpiry]);
  if (o.receiveMaximum !== undefined) props.push([0x21, o.receiveMaximum]);
  return frame(
    0x10,
    str('MQTT'),
    Buffer.from([o.v, (o.clean ?? true) ? 0x02 : 0x00]),
    u16(o.keepAlive ?? 60),
    propsFor(o.v, props),
    str(o.clientId),
  );
}
/** CONNECT with Clean Session / Clean Start 0; 5.0 asks for a 60 s Session Expiry Interval. */
export const persistentConnect = (v: 4 | 5, clientId: string): Buffer =>
  connectPacket({ v, clientId, clean: false, sessionExpiry: 60 });

/** SUBSCRIBE to one filter (5.0: no properties; options byte = the maximum QoS). */
export const subscribePacket = (v: 4 | 5, id: number, filter: string, qos: number): Buffer =>
  frame(0x82, u16(id), propsFor(v), str(filter), Buffer.from([qos]));

export interface PublishOptions {
  v: 4 | 5;
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  /** Packet identifier (QoS > 0 only); default 1. */
  id?: number;
  dup?: boolean;
  /** 5.0 only: the properties, in this order. */
  props?: Prop[];
}
export function publishPacket(o: PublishOptions): Buffer {
  const first = 0x30 | (o.dup ? 0x08 : 0) | (o.qos << 1);
  return frame(
    first,
    str(o.topic),
    o.qos > 0 ? u16(o.id ?? 1) : Buffer.alloc(0),
    propsFor(o.v, o.props),
    Buffer.from(o.payload),
  );
}

/** PUBACK (4), PUBREC (5) or PUBCOMP (7) for a packet id, without reason code. */
export const ackPacket = (type: 4 | 5 | 7, id: number): Buffer => frame(type << 4, u16(id));
export const pubackPacket = (id: number): Buffer => ackPacket(4, id);
/** PUBREL, whose fixed header flags are 0010. */
export const pubrelPacket = (id: number): Buffer => frame(0x62, u16(id));

// ---------------------------------------------------------------------------------------------
// Packets the server sends.

export interface RawPublish {
  topic: string;
  qos: number;
  dup: boolean;
  /** The packet identifier; undefined at QoS 0. */
  id: number | undefined;
  /** 5.0 properties in the order received; empty for 3.1.1. */
  props: Prop[];
  payload: string;
}

export function parsePublish(p: RawPacket, v: 4 | 5): RawPublish {
  const qos = (p.flags >> 1) & 3;
  const tl = p.body.readUInt16BE(0);
  const topic = p.body.toString('utf8', 2, 2 + tl);
  let pos = 2 + tl;
  let id: number | undefined;
  if (qos > 0) {
    id = p.body.readUInt16BE(pos);
    pos += 2;
  }
  let props: Prop[] = [];
  if (v === 5) [props, pos] = decodeProps(p.body, pos);
  return { topic, qos, dup: (p.flags & 0x08) !== 0, id, props, payload: p.body.toString('utf8', pos) };
}

/** MQTT 5.0 properties of a CONNACK: id → value (strings and numbers only). */
export function connackProperties(body: Buffer): Map<number, string | number> {
  const [props] = decodeProps(body, 2);
  const out = new Map<number, string | number>();
  for (const [id, value] of props) {
    // User Property and Authentication Data are neither strings nor numbers.
    if (id !== 0x26 && id !== 0x16) out.set(id, value as string | number);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The socket.

export class Raw {
  /** Every packet received and not yet taken by `next`, in order. */
  readonly packets: RawPacket[] = [];
  closed = false;
  private buf = Buffer.alloc(0);

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    sock.on('close', () => {
      this.closed = true;
    });
    sock.on('error', () => {});
  }

  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  private parse(): void {
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      let d: number;
      do {
        if (i >= this.buf.length) return;
        d = this.buf[i++]!;
        len += (d & 0x7f) * mul;
        mul *= 128;
      } while (d & 0x80);
      if (this.buf.length < i + len) return;
      this.packets.push({ type: this.buf[0]! >> 4, flags: this.buf[0]! & 0x0f, body: this.buf.subarray(i, i + len) });
      this.buf = this.buf.subarray(i + len);
    }
  }

  send(b: Buffer): void {
    this.sock.write(b);
  }

  /** Sends `connect` and waits for the CONNACK, which must accept the connection. */
  async handshake(connect: Buffer): Promise<RawPacket> {
    this.send(connect);
    const connack = await this.next(2);
    assert.equal(connack.body[1], 0, 'CONNACK accepted');
    return connack;
  }

  /** How many packets of a type have been received and not taken. */
  count(type: number): number {
    return this.packets.filter((p) => p.type === type).length;
  }

  /** Takes the first packet of a type, waiting for it. */
  async next(type: number, timeoutMs = 5000): Promise<RawPacket> {
    await waitFor(() => this.packets.some((p) => p.type === type), timeoutMs, `a packet of type ${type}`);
    return this.packets.splice(
      this.packets.findIndex((p) => p.type === type),
      1,
    )[0]!;
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, 'the server to close the connection');
  }

  close(): void {
    this.sock.destroy();
  }
}
