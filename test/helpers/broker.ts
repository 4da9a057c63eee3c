/**
 * One real broker per test (nats.js NatsServer.start() style): every listener on an ephemeral
 * port, quiet logs, stopped by the caller.
 */
import { type BraidConfigInput, Broker } from '../../src/index.js';
import { createLogger, type Logger } from '../../src/util/log.js';

export interface TestBroker {
  broker: Broker;
  /** mqtt://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT/mqtt */
  wsUrl: string;
  port: number;
  wsPort: number;
  /** Log lines the broker wrote, for asserting that bad input was logged. */
  logs: string[];
  stop(): Promise<void>;
}

/** Broker configuration for a test, and the embedding hooks to install. */
export type BrokerOverrides = BraidConfigInput & {
  hooks?: Partial<Pick<Broker, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>>;
};

export async function startBroker(overrides: BrokerOverrides = {}): Promise<TestBroker> {
  const logs: string[] = [];
  const logger: Logger = createLogger({
    level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'info',
    write: (line) => {
      logs.push(line);
      if (process.env.TEST_LOG_LEVEL) process.stderr.write(line);
    },
  });
  const { hooks, ...config } = overrides;
  const listeners = {
    mqtt: { port: 0, host: '127.0.0.1' },
    ws: { port: 0, host: '127.0.0.1', path: '/mqtt' },
    http: false as const,
    amqp: false as const,
    ...(config.listeners ?? {}),
  };
  // In memory unless a test asks for a store (a data dir of its own).
  const storage = { persistence: false, ...(config.storage ?? {}) };
  const broker = new Broker({ ...config, listeners, storage } as BraidConfigInput, { logger, ...hooks });
  await broker.start();
  const mqtt = broker.address('mqtt');
  const ws = broker.address('ws');
  return {
    broker,
    url: `mqtt://127.0.0.1:${mqtt?.port ?? 0}`,
    wsUrl: `ws://127.0.0.1:${ws?.port ?? 0}/mqtt`,
    port: mqtt?.port ?? 0,
    wsPort: ws?.port ?? 0,
    logs,
    stop: () => broker.stop(),
  };
}
