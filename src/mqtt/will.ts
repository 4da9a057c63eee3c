/**
 * Will messages [MQTT-3.1.2-8..17, MQTT-3.1.3-9]: published through the same router as any
 * PUBLISH, retained when the will says so.
 */
import type { Will } from './codec/packets.js';
import type { MqttContext } from './context.js';
import { publishToMessage, topicToKey } from './mapping.js';

export function publishWill(ctx: MqttContext, vhost: string, clientId: string, will: Will): void {
  const now = Date.now();
  const payload = will.payload;
  const msg = publishToMessage(
    {
      type: 3,
      dup: false,
      qos: will.qos,
      retain: will.retain,
      topic: will.topic,
      payload,
      ...(will.properties && { properties: will.properties }),
    },
    topicToKey(will.topic),
    payload,
    { vhost, exchange: ctx.settings.topicExchange, publisherId: clientId, now },
  );
  try {
    if (will.retain && ctx.settings.retainAvailable) {
      ctx.core.retained(vhost).set(msg.routingKey, payload.length === 0 ? null : msg);
    }
    ctx.core.publish(msg);
    ctx.log.debug('will published', { clientId, topic: will.topic });
  } catch (err) {
    ctx.log.warn('will could not be published', { clientId, topic: will.topic, error: (err as Error).message });
  }
}
