/**
 * Embedding hooks, shaped as Aedes users know them. Each may be written async
 * (`async (client, username, password) => boolean`) or in Aedes' callback style
 * (`(client, username, password, callback) => void`); `adaptHook` tells them apart by arity.
 */
import type { QoS } from './codec/packets.js';

/** The client as hooks and events see it. */
export interface MqttClientInfo {
  readonly id: string;
  readonly username: string | undefined;
  readonly protocol: 'mqtt';
  readonly protocolVersion: 3 | 4 | 5;
  readonly transport: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly connectionId: string;
}

export interface PublishInfo {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
}

export interface SubscriptionInfo {
  readonly topic: string;
  readonly qos: QoS;
}

type Awaitable<T> = T | Promise<T>;
type Callback<T> = (err: Error | null | undefined, result?: T) => void;

export interface MqttHooks {
  /** Return false (or throw) to refuse with bad user name or password; `{ reasonCode }` to pick the code. */
  authenticate?:
    | ((
        client: MqttClientInfo,
        username: string | undefined,
        password: Buffer | undefined,
      ) => Awaitable<boolean | { reasonCode: number }>)
    | ((
        client: MqttClientInfo,
        username: string | undefined,
        password: Buffer | undefined,
        cb: Callback<boolean>,
      ) => void);
  /** Return false (or throw / call back with an error) to deny the publish. */
  authorizePublish?:
    | ((client: MqttClientInfo, packet: PublishInfo) => Awaitable<boolean | undefined>)
    | ((client: MqttClientInfo, packet: PublishInfo, cb: (err?: Error | null) => void) => void);
  /** Return the subscription (possibly with a lower QoS) to allow, null/false to deny. */
  authorizeSubscribe?:
    | ((client: MqttClientInfo, sub: SubscriptionInfo) => Awaitable<SubscriptionInfo | null | boolean>)
    | ((client: MqttClientInfo, sub: SubscriptionInfo, cb: Callback<SubscriptionInfo | null>) => void);
}

/** Calls a hook that is either async (arity n) or callback-style (arity n + 1). */
export function callHook<R>(fn: (...args: never[]) => unknown, arity: number, args: unknown[]): Promise<R> {
  if (fn.length > arity) {
    return new Promise<R>((resolve, reject) => {
      (fn as (...a: unknown[]) => void)(...args, (err: Error | null | undefined, result?: R) => {
        if (err) reject(err);
        else resolve(result as R);
      });
    });
  }
  try {
    return Promise.resolve((fn as (...a: unknown[]) => R | Promise<R>)(...args));
  } catch (err) {
    return Promise.reject(err);
  }
}
