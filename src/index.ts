/** The embeddable API of Braid: `import { Broker } from 'braid'`. */
export { Broker, type BrokerOptions, type ListenerAddress, type ListenerName } from './broker.js';
export type { BraidConfig, BraidConfigInput } from './config/schema.js';
export type { MqttClientInfo, MqttHooks, PublishInfo, SubscriptionInfo } from './mqtt/hooks.js';
export type { Logger, LogLevel } from './util/log.js';
