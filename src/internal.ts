/** Internals for tests and the bench (nats.js internal_mod.ts); not a stable API. */

export { hashPassword, verifyPasswordHash } from './auth/passwords.js';
export { BrokerCore } from './core/broker-core.js';
export { createMessage } from './core/message.js';
export * from './index.js';
export * as mqttCodec from './mqtt/codec/index.js';
export { createLogger } from './util/log.js';
