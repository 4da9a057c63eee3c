/**
 * The AMQP 0-9-1 wire codec. Hand-written: frames (frame.ts), field tables (table.ts), content
 * (content.ts), errors (errors.ts). Generated from tools/codegen/spec/amqp-rabbitmq-0.9.1.json by
 * tools/codegen/amqp091.ts: methods (methods.gen.ts) and basic properties (properties.gen.ts).
 */
export * from './content.js';
export * from './errors.js';
export * from './frame.js';
export * from './methods.gen.js';
export * from './primitives.js';
export * from './properties.gen.js';
export * from './table.js';
