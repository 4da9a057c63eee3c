/**
 * MQTT 5.0 properties (§2.2.2). One table says, for every property, its identifier, its data
 * type, the packets it may appear in (Table 2-4) and the values that are a Protocol Error; the
 * decoder, the sizer, the encoder and the test generators all read the same table.
 */

import type { Properties } from './packets.js';
import { malformed, protocolError, type Reader } from './reader.js';
import { utf8Length } from './utf8.js';
import { vbiSize } from './vbi.js';
import type { Writer } from './writer.js';

export const PropertyType = {
  BYTE: 1,
  TWO_BYTE_INTEGER: 2,
  FOUR_BYTE_INTEGER: 3,
  VARIABLE_BYTE_INTEGER: 4,
  UTF8_STRING: 5,
  BINARY_DATA: 6,
  UTF8_STRING_PAIR: 7,
} as const;
export type PropertyTypeValue = (typeof PropertyType)[keyof typeof PropertyType];

/**
 * Where a set of properties sits: a packet type 1..15, or 0 for the Will Properties in the
 * CONNECT payload (packet type 0 is reserved, so the number is free).
 */
export const WILL_PROPERTIES = 0;

export interface PropertyDef {
  readonly id: number;
  readonly name: keyof Properties;
  readonly type: PropertyTypeValue;
  /** Bit (1 << kind) set for each packet type (or WILL_PROPERTIES) that may carry it. */
  readonly kinds: number;
  /** Bit (1 << kind) set where it may appear more than once (it is then an array). */
  readonly repeatable: number;
  /** Numeric values outside [min, max] are a Protocol Error (0x82). */
  readonly min?: number;
  readonly max?: number;
}

const W = 1 << WILL_PROPERTIES;
const CONNECT = 1 << 1;
const CONNACK = 1 << 2;
const PUBLISH = 1 << 3;
const ACKS = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7);
const SUBSCRIBE = 1 << 8;
const SUBACK = 1 << 9;
const UNSUBSCRIBE = 1 << 10;
const UNSUBACK = 1 << 11;
const DISCONNECT = 1 << 14;
const AUTH = 1 << 15;
const ALL = W | CONNECT | CONNACK | PUBLISH | ACKS | SUBSCRIBE | SUBACK | UNSUBSCRIBE | UNSUBACK | DISCONNECT | AUTH;

const T = PropertyType;

/** Table 2-4, in identifier order. `min`/`max` come from the "It is a Protocol Error" sentences. */
export const PROPERTY_DEFS: readonly PropertyDef[] = [
  { id: 0x01, name: 'payloadFormatIndicator', type: T.BYTE, kinds: PUBLISH | W, repeatable: 0 },
  { id: 0x02, name: 'messageExpiryInterval', type: T.FOUR_BYTE_INTEGER, kinds: PUBLISH | W, repeatable: 0 },
  { id: 0x03, name: 'contentType', type: T.UTF8_STRING, kinds: PUBLISH | W, repeatable: 0 },
  { id: 0x08, name: 'responseTopic', type: T.UTF8_STRING, kinds: PUBLISH | W, repeatable: 0 },
  { id: 0x09, name: 'correlationData', type: T.BINARY_DATA, kinds: PUBLISH | W, repeatable: 0 },
  // §3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error, and so is a second one in a
  // SUBSCRIBE; a PUBLISH carries one per matching subscription (§3.3.2.3.8).
  {
    id: 0x0b,
    name: 'subscriptionIdentifiers',
    type: T.VARIABLE_BYTE_INTEGER,
    kinds: PUBLISH | SUBSCRIBE,
    repeatable: PUBLISH,
    min: 1,
  },
  {
    id: 0x11,
    name: 'sessionExpiryInterval',
    type: T.FOUR_BYTE_INTEGER,
    kinds: CONNECT | CONNACK | DISCONNECT,
    repeatable: 0,
  },
  { id: 0x12, name: 'assignedClientIdentifier', type: T.UTF8_STRING, kinds: CONNACK, repeatable: 0 },
  { id: 0x13, name: 'serverKeepAlive', type: T.TWO_BYTE_INTEGER, kinds: CONNACK, repeatable: 0 },
  { id: 0x15, name: 'authenticationMethod', type: T.UTF8_STRING, kinds: CONNECT | CONNACK | AUTH, repeatable: 0 },
  { id: 0x16, name: 'authenticationData', type: T.BINARY_DATA, kinds: CONNECT | CONNACK | AUTH, repeatable: 0 },
  { id: 0x17, name: 'requestProblemInformation', type: T.BYTE, kinds: CONNECT, repeatable: 0, min: 0, max: 1 },
  { id: 0x18, name: 'willDelayInterval', type: T.FOUR_BYTE_INTEGER, kinds: W, repeatable: 0 },
  { id: 0x19, name: 'requestResponseInformation', type: T.BYTE, kinds: CONNECT, repeatable: 0, min: 0, max: 1 },
  { id: 0x1a, name: 'responseInformation', type: T.UTF8_STRING, kinds: CONNACK, repeatable: 0 },
  { id: 0x1c, name: 'serverReference', type: T.UTF8_STRING, kinds: CONNACK | DISCONNECT, repeatable: 0 },
  {
    id: 0x1f,
    name: 'reasonString',
    type: T.UTF8_STRING,
    kinds: CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT | AUTH,
    repeatable: 0,
  },
  { id: 0x21, name: 'receiveMaximum', type: T.TWO_BYTE_INTEGER, kinds: CONNECT | CONNACK, repeatable: 0, min: 1 },
  { id: 0x22, name: 'topicAliasMaximum', type: T.TWO_BYTE_INTEGER, kinds: CONNECT | CONNACK, repeatable: 0 },
  // Topic Alias 0 is left to the PUBLISH handler, which answers it with 0x94 [MQTT-3.3.2-8].
  { id: 0x23, name: 'topicAlias', type: T.TWO_BYTE_INTEGER, kinds: PUBLISH, repeatable: 0 },
  { id: 0x24, name: 'maximumQoS', type: T.BYTE, kinds: CONNACK, repeatable: 0, min: 0, max: 1 },
  { id: 0x25, name: 'retainAvailable', type: T.BYTE, kinds: CONNACK, repeatable: 0, min: 0, max: 1 },
  { id: 0x26, name: 'userProperties', type: T.UTF8_STRING_PAIR, kinds: ALL, repeatable: ALL },
  {
    id: 0x27,
    name: 'maximumPacketSize',
    type: T.FOUR_BYTE_INTEGER,
    kinds: CONNECT | CONNACK,
    repeatable: 0,
    min: 1,
  },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', type: T.BYTE, kinds: CONNACK, repeatable: 0, min: 0, max: 1 },
  { id: 0x29, name: 'subscriptionIdentifierAvailable', type: T.BYTE, kinds: CONNACK, repeatable: 0, min: 0, max: 1 },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', type: T.BYTE, kinds: CONNACK, repeatable: 0, min: 0, max: 1 },
];

/** Indexed by identifier; all identifiers fit in one byte in 5.0. */
const BY_ID: (PropertyDef | undefined)[] = [];
for (const d of PROPERTY_DEFS) BY_ID[d.id] = d;

/** Indexed by kind (0 = Will, 1..15 = packet type): the properties that kind may carry. */
const BY_KIND: PropertyDef[][] = [];
for (let kind = 0; kind < 16; kind++) BY_KIND.push(PROPERTY_DEFS.filter((d) => (d.kinds & (1 << kind)) !== 0));

/**
 * Subscription Identifier and User Property are arrays in `Properties` even where only one is
 * allowed; they are the only VBI and UTF-8 pair properties.
 */
export function isList(def: PropertyDef): boolean {
  return def.type === T.VARIABLE_BYTE_INTEGER || def.type === T.UTF8_STRING_PAIR;
}

export function propertyDefsFor(kind: number): readonly PropertyDef[] {
  return BY_KIND[kind] ?? [];
}

type PropertyBag = Record<string, unknown>;

/**
 * Reads a Property Length and the properties after it [MQTT-2.2.2-1]. Returns undefined when the
 * length is 0, so a decoded packet without properties has no `properties` key.
 */
export function decodeProperties(r: Reader, kind: number): Properties | undefined {
  const len = r.readVBI();
  if (len === 0) return undefined;
  const end = r.off + len;
  if (end > r.end) throw malformed(`property length ${len} runs past the end of the packet`);
  const outerEnd = r.end;
  r.end = end;
  const props: PropertyBag = {};
  const kindBit = 1 << kind;
  while (r.off < end) {
    const id = r.readVBI();
    const def = BY_ID[id];
    // §2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
    if (def === undefined) throw malformed(`unknown property identifier 0x${id.toString(16)}`);
    if ((def.kinds & kindBit) === 0) {
      throw malformed(`property ${def.name} (0x${id.toString(16)}) is not allowed in packet type ${kind}`);
    }
    let value: number | string | Buffer | [string, string];
    switch (def.type) {
      case T.BYTE:
        value = r.readU8();
        break;
      case T.TWO_BYTE_INTEGER:
        value = r.readU16();
        break;
      case T.FOUR_BYTE_INTEGER:
        value = r.readU32();
        break;
      case T.VARIABLE_BYTE_INTEGER:
        value = r.readVBI();
        break;
      case T.UTF8_STRING:
        value = r.readUtf8();
        break;
      case T.BINARY_DATA:
        value = r.readBinary();
        break;
      default:
        value = [r.readUtf8(), r.readUtf8()];
    }
    if (typeof value === 'number') {
      if ((def.min !== undefined && value < def.min) || (def.max !== undefined && value > def.max)) {
        throw protocolError(`property ${def.name} has the value ${value}, which is a Protocol Error`);
      }
    }
    const prev = props[def.name];
    if (isList(def)) {
      if (prev === undefined) {
        props[def.name] = [value];
      } else if ((def.repeatable & kindBit) === 0) {
        throw protocolError(`property ${def.name} appears more than once`);
      } else {
        (prev as unknown[]).push(value);
      }
    } else if (prev !== undefined) {
      throw protocolError(`property ${def.name} appears more than once`);
    } else {
      props[def.name] = value;
    }
  }
  r.end = outerEnd;
  return props as Properties;
}

/** Bytes of a UTF-8 Encoded String field, length prefix included. */
export function utf8FieldSize(s: string): number {
  const n = utf8Length(s);
  if (n > 0xffff) throw new RangeError(`UTF-8 string of ${n} bytes exceeds 65535`);
  return 2 + n;
}

/** Bytes of a Binary Data field, length prefix included. */
export function binaryFieldSize(b: Uint8Array): number {
  if (b.length > 0xffff) throw new RangeError(`binary data of ${b.length} bytes exceeds 65535`);
  return 2 + b.length;
}

/**
 * Bytes of the properties themselves, without the Property Length. Properties not allowed in
 * `kind` are skipped: they are not encoded either.
 */
export function propertiesContentSize(props: Properties | undefined, kind: number): number {
  if (props === undefined) return 0;
  const bag = props as PropertyBag;
  let size = 0;
  for (const def of BY_KIND[kind]!) {
    const v = bag[def.name];
    if (v === undefined) continue;
    switch (def.type) {
      case T.BYTE:
        size += 2;
        break;
      case T.TWO_BYTE_INTEGER:
        size += 3;
        break;
      case T.FOUR_BYTE_INTEGER:
        size += 5;
        break;
      case T.VARIABLE_BYTE_INTEGER:
        for (const id of v as number[]) size += 1 + vbiSize(id);
        break;
      case T.UTF8_STRING:
        size += 1 + utf8FieldSize(v as string);
        break;
      case T.BINARY_DATA:
        size += 1 + binaryFieldSize(v as Buffer);
        break;
      default:
        for (const [k, val] of v as Array<[string, string]>) size += 1 + utf8FieldSize(k) + utf8FieldSize(val);
    }
  }
  return size;
}

/** Bytes of the Property Length plus the properties. */
export function propertiesSize(props: Properties | undefined, kind: number): number {
  const n = propertiesContentSize(props, kind);
  return vbiSize(n) + n;
}

/** Writes the Property Length and the properties allowed in `kind`. */
export function encodeProperties(w: Writer, props: Properties | undefined, kind: number): void {
  if (props === undefined) {
    w.writeU8(0);
    return;
  }
  w.writeVBI(propertiesContentSize(props, kind));
  const bag = props as PropertyBag;
  for (const def of BY_KIND[kind]!) {
    const v = bag[def.name];
    if (v === undefined) continue;
    switch (def.type) {
      case T.BYTE:
        w.writeU8(def.id);
        w.writeU8(v as number);
        break;
      case T.TWO_BYTE_INTEGER:
        w.writeU8(def.id);
        w.writeU16(v as number);
        break;
      case T.FOUR_BYTE_INTEGER:
        w.writeU8(def.id);
        w.writeU32(v as number);
        break;
      case T.VARIABLE_BYTE_INTEGER:
        for (const id of v as number[]) {
          w.writeU8(def.id);
          w.writeVBI(id);
        }
        break;
      case T.UTF8_STRING:
        w.writeU8(def.id);
        w.writeUtf8(v as string);
        break;
      case T.BINARY_DATA:
        w.writeU8(def.id);
        w.writeBinary(v as Buffer);
        break;
      default:
        for (const [k, val] of v as Array<[string, string]>) {
          w.writeU8(def.id);
          w.writeUtf8(k);
          w.writeUtf8(val);
        }
    }
  }
}

/** True when `props` would encode to at least one property in `kind`. */
export function hasProperties(props: Properties | undefined, kind: number): boolean {
  return props !== undefined && propertiesContentSize(props, kind) > 0;
}
