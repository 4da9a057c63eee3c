/**
 * SUBSCRIBE / UNSUBSCRIBE (MQTT 5.0 §3.8–3.11, §4.8). A subscription is a binding from the
 * topic exchange to the session's queue with the options as binding arguments; `$share/g/f`
 * is a consumer on the shared queue `mqtt-shared.<g>.<f>`.
 */

import type { SubscribePacket, SubscriptionRequest, UnsubscribePacket } from '../codec/packets.js';
import { validTopicFilter } from '../codec/topic.js';
import type { MqttConnection } from '../connection.js';
import { MqttError, RC, SUBACK_FAILURE_V3 } from '../errors.js';
import { callHook, type SubscriptionInfo } from '../hooks.js';
import { filterToBindingKey } from '../mapping.js';
import { RETAINED_DELIVERY, releaseSharedQueue, type Subscription } from '../session.js';

interface Parsed {
  req: SubscriptionRequest;
  /** Filter without the `$share/group/` prefix. */
  filter: string;
  group: string | undefined;
}

const SHARE_PREFIX = '$share/';

/** Splits `$share/group/filter` [MQTT-4.8.2-1, -2]; undefined when malformed. */
function parse(req: SubscriptionRequest): Parsed | undefined {
  const f = req.topicFilter;
  if (!f.startsWith(SHARE_PREFIX)) return validTopicFilter(f) ? { req, filter: f, group: undefined } : undefined;
  const slash = f.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return undefined;
  const group = f.slice(SHARE_PREFIX.length, slash);
  const filter = f.slice(slash + 1);
  if (group.length === 0 || /[+#]/.test(group) || !validTopicFilter(filter)) return undefined;
  return { req, filter, group };
}

export function handleSubscribe(c: MqttConnection, p: SubscribePacket): Promise<void> | undefined {
  const { ctx } = c;
  const s = ctx.settings;
  const v5 = c.version === 5;
  const subscriptionId = p.properties?.subscriptionIdentifiers?.[0];
  if (subscriptionId !== undefined && !s.subscriptionIdentifierAvailable) {
    throw new MqttError(RC.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, 'subscription identifiers are off');
  }
  const parsed: Array<Parsed | number> = [];
  for (const req of p.subscriptions) {
    const ps = parse(req);
    if (!ps) {
      // 5.0 answers 0x8F per filter; 3.1.1 has no code for it and, like Mosquitto, disconnects.
      if (!v5)
        throw new MqttError(
          RC.TOPIC_FILTER_INVALID,
          `invalid topic filter ${JSON.stringify(req.topicFilter)}`,
          'MQTT-4.7.1-1',
        );
      parsed.push(RC.TOPIC_FILTER_INVALID);
      continue;
    }
    if (ps.group !== undefined && req.noLocal) {
      throw new MqttError(RC.PROTOCOL_ERROR, 'No Local on a shared subscription', 'MQTT-3.8.3-4');
    }
    const access = ctx.core.access;
    if (ps.group !== undefined && !s.sharedSubscriptionAvailable) parsed.push(RC.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
    else if (access && !access.canSubscribe(c.subject(), s.topicExchange, filterToBindingKey(ps.filter))) {
      parsed.push(RC.NOT_AUTHORIZED);
    } else if (!s.wildcardSubscriptionAvailable && /[+#]/.test(ps.filter))
      parsed.push(RC.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    else parsed.push(ps);
  }

  const hook = ctx.hooks.authorizeSubscribe;
  if (!hook) {
    finish(c, p, parsed, subscriptionId);
    return undefined;
  }
  return Promise.all(
    parsed.map((x) => {
      if (typeof x === 'number') return x;
      const info: SubscriptionInfo = { topic: x.req.topicFilter, qos: x.req.qos };
      return callHook<SubscriptionInfo | null | boolean>(hook, 2, [c.client, info]).then(
        (r) => {
          if (r === null || r === false || r === undefined) return RC.NOT_AUTHORIZED;
          if (r !== true && r.qos < x.req.qos) return { ...x, req: { ...x.req, qos: r.qos } };
          return x;
        },
        () => RC.NOT_AUTHORIZED,
      );
    }),
  ).then((decided) => finish(c, p, decided, subscriptionId));
}

function finish(
  c: MqttConnection,
  p: SubscribePacket,
  decided: Array<Parsed | number>,
  subscriptionId: number | undefined,
): void {
  if (c.state !== 'connected') return;
  const { ctx } = c;
  const s = ctx.settings;
  const session = c.session!;
  const vhost = session.vhost;
  const exchange = s.topicExchange;
  const codes: number[] = [];
  const retainedSends: Array<() => void> = [];
  const granted: SubscriptionInfo[] = [];
  for (const d of decided) {
    if (typeof d === 'number') {
      if (d === RC.NOT_AUTHORIZED) ctx.log.info('subscription denied', { client: c.clientId });
      // 3.1.1 SUBACK knows only 0x80 for a failure (3.1.1 §3.9.3).
      codes.push(c.version === 5 ? d : SUBACK_FAILURE_V3);
      continue;
    }
    const qos = Math.min(d.req.qos, s.maxQos) as 0 | 1 | 2;
    const sub: Subscription = {
      filter: d.req.topicFilter,
      qos,
      noLocal: d.req.noLocal,
      retainAsPublished: d.req.retainAsPublished,
      retainHandling: d.req.retainHandling,
      subscriptionId,
      sharedQueue: undefined,
    };
    const args = {
      qos,
      noLocal: sub.noLocal,
      retainAsPublished: sub.retainAsPublished,
      retainHandling: sub.retainHandling,
      subscriptionId,
    };
    const bindingKey = filterToBindingKey(d.filter);
    const existed = session.subscriptions.has(sub.filter);
    try {
      if (d.group === undefined) {
        // [MQTT-3.8.4-3]: a subscription with the same filter replaces the existing one.
        const binding = ctx.core.bindQueue(vhost, session.queue.name, exchange, bindingKey, args, {
          noDollarWildcard: true,
          replaceArgs: true,
        });
        session.subscriptions.set(sub.filter, sub);
        // Retain Handling [MQTT-3.3.1-9..11]: 0 always, 1 only for a new subscription, 2 never.
        if (s.retainAvailable && (sub.retainHandling === 0 || (sub.retainHandling === 1 && !existed))) {
          const marked = { ...binding, args: { ...args, [RETAINED_DELIVERY]: true } };
          retainedSends.push(() => {
            for (const m of ctx.core.retained(vhost).match(bindingKey, true)) session.queue.offer(m, [marked]);
          });
        }
      } else {
        const queueName = `mqtt-shared.${d.group}.${d.filter}`;
        sub.sharedQueue = queueName;
        let queue = ctx.core.getQueue(vhost, queueName);
        if (!queue) {
          queue = ctx.core.declareQueue(vhost, queueName, { durable: false, autoDelete: false });
          ctx.core.bindQueue(vhost, queueName, exchange, bindingKey, {}, { noDollarWildcard: true });
        }
        if (!existed) ctx.retainShared(vhost, queueName);
        session.subscriptions.set(sub.filter, sub);
        // Retained messages are not sent for shared subscriptions [MQTT-4.8.2-?; 5.0 §4.8.2].
        session.addSharedConsumer(queue, sub);
      }
    } catch (err) {
      ctx.log.warn('subscription failed', { client: c.clientId, filter: sub.filter, error: (err as Error).message });
      codes.push(c.version === 5 ? RC.UNSPECIFIED_ERROR : SUBACK_FAILURE_V3);
      continue;
    }
    codes.push(qos);
    granted.push({ topic: sub.filter, qos });
  }
  // SUBACK first, then the retained messages (5.0 §3.8.4; Mosquitto does the same).
  c.sendPacket({ type: 9, packetId: p.packetId, reasonCodes: codes });
  for (const send of retainedSends) send();
  if (granted.length > 0) ctx.events.emit('subscribe', granted, c.client);
}

export function handleUnsubscribe(c: MqttConnection, p: UnsubscribePacket): undefined {
  const { ctx } = c;
  const session = c.session!;
  const vhost = session.vhost;
  const codes: number[] = [];
  for (const filter of p.topicFilters) {
    const sub = session.subscriptions.get(filter);
    if (!sub) {
      codes.push(RC.NO_SUBSCRIPTION_EXISTED);
      continue;
    }
    session.subscriptions.delete(filter);
    if (sub.sharedQueue) {
      session.removeSharedConsumer(sub.sharedQueue);
      releaseSharedQueue(ctx, vhost, sub.sharedQueue);
    } else {
      ctx.core.unbindQueue(vhost, session.queue.name, ctx.settings.topicExchange, filterToBindingKey(filter));
    }
    codes.push(RC.SUCCESS);
  }
  // [MQTT-3.10.4-4]: UNSUBACK even when nothing was subscribed; 3.1.1 carries no codes.
  c.sendPacket({ type: 11, packetId: p.packetId, reasonCodes: c.version === 5 ? codes : [] });
  ctx.events.emit('unsubscribe', p.topicFilters, c.client);
  return undefined;
}
