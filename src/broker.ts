/**
 * The broker process, assembled: config → core → adapters → listeners. This is the only place
 * that knows every layer; each layer below knows only the ones under it (DESIGN.md).
 */
import { EventEmitter } from 'node:events';
import { AmqpConnection } from './amqp091/connection.js';
import { AmqpContext } from './amqp091/context.js';
import { Acl } from './auth/acl.js';
import { UserDb } from './auth/users.js';
import { type BraidConfig, type BraidConfigInput, validateConfig } from './config/schema.js';
import { BrokerCore } from './core/broker-core.js';
import { startHttpServer } from './mgmt/http.js';
import { MqttConnection } from './mqtt/connection.js';
import { MqttContext, type MqttSettings } from './mqtt/context.js';
import type { MqttHooks } from './mqtt/hooks.js';
import { Session } from './mqtt/session.js';
import { createEmbeddedStore } from './store/embedded/index.js';
import type { Store } from './store/store.js';
import { listenTcp, type OpenListener } from './transport/tcp.js';
import { listenWebSocket } from './transport/websocket.js';
import { Alarms } from './util/alarms.js';
import type { ByteConnection } from './util/byte-connection.js';
import { createLogger, type Logger } from './util/log.js';
import { packageVersion } from './util/version.js';

export type ListenerName = 'mqtt' | 'ws' | 'mqtts' | 'wss' | 'amqp' | 'amqps' | 'http';

export interface ListenerAddress {
  name: ListenerName;
  host: string;
  port: number;
  path?: string;
}

export interface BrokerOptions {
  logger?: Logger;
}

/**
 * An embeddable Braid broker.
 *
 * ```ts
 * const broker = new Broker({ listeners: { mqtt: { port: 0 }, ws: false, http: false } });
 * await broker.start();
 * console.log(broker.addresses);
 * await broker.stop();
 * ```
 *
 * Events: `client`, `clientReady`, `clientDisconnect`, `clientError`, `keepaliveTimeout`,
 * `subscribe`, `unsubscribe`, `publish`. Hooks (async or Aedes callback style) are set as
 * properties: `authenticate`, `authorizePublish`, `authorizeSubscribe`.
 */
export class Broker extends EventEmitter implements MqttHooks {
  readonly config: BraidConfig;
  readonly log: Logger;
  readonly core: BrokerCore;
  /**
   * Resource alarms (limits.memoryHighWatermark, limits.diskFreeLimit): while one is set,
   * publishers are blocked. `broker.alarms.set('memory', true)` raises one by hand (tests,
   * embedding); `set('memory', false)` clears it.
   */
  readonly alarms: Alarms;
  authenticate?: MqttHooks['authenticate'];
  authorizePublish?: MqttHooks['authorizePublish'];
  authorizeSubscribe?: MqttHooks['authorizeSubscribe'];
  private readonly mqtt: MqttContext;
  private readonly amqp: AmqpContext;
  private store: Store | undefined;
  private readonly openListeners: Array<{ address: ListenerAddress; close(): Promise<void> }> = [];
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(config: BraidConfigInput | BraidConfig = {}, opts: BrokerOptions & MqttHooks = {}) {
    super();
    this.config = validateConfig(config, 'Broker options');
    this.log = opts.logger ?? createLogger({ level: this.config.log.level, format: this.config.log.format });
    if (opts.authenticate) this.authenticate = opts.authenticate;
    if (opts.authorizePublish) this.authorizePublish = opts.authorizePublish;
    if (opts.authorizeSubscribe) this.authorizeSubscribe = opts.authorizeSubscribe;
    this.core = new BrokerCore({ logger: this.log.child('core') });
    const a = this.config.auth;
    const users = new UserDb({
      allowAnonymous: a.allowAnonymous,
      users: a.users,
      guest: a.guest,
      defaultVhost: this.config.mqtt.vhost,
    });
    const m = this.config.mqtt;
    const settings: MqttSettings = {
      maxKeepAlive: m.maxKeepAlive,
      maxPacketSize: m.maxPacketSize,
      maxPacketSizeUnauthenticated: Math.min(m.maxPacketSizeUnauthenticated, m.maxPacketSize),
      receiveMaximum: m.receiveMaximum,
      maxInflightMessages: m.maxInflightMessages,
      maxQueuedMessages: m.maxQueuedMessages,
      maxQos: m.maxQos as 0 | 1 | 2,
      retainAvailable: m.retainAvailable,
      wildcardSubscriptionAvailable: m.wildcardSubscriptionAvailable,
      subscriptionIdentifierAvailable: m.subscriptionIdentifierAvailable,
      sharedSubscriptionAvailable: m.sharedSubscriptionAvailable,
      topicAliasMaximum: m.topicAliasMaximum,
      topicExchange: m.topicExchange,
      vhost: m.vhost,
      qos0MaxBufferedBytes: m.qos0MaxBufferedBytes,
      queueQos0Offline: m.queueQos0Offline,
      maxSessionExpiryInterval: m.maxSessionExpiryInterval,
      connectTimeout: m.connectTimeout,
      maxClientIdLength: m.maxClientIdLength,
    };
    this.core.ensureVHost(m.vhost);
    // A vhost that a configured user belongs to exists from the start (there is no API to create one yet).
    for (const u of a.users) if (u.vhost !== undefined) this.core.ensureVHost(u.vhost);
    if (a.aclFile !== undefined) {
      let acl: Acl;
      try {
        acl = Acl.fromFile(a.aclFile);
      } catch (err) {
        throw new Error(`config error: auth.aclFile: ${(err as Error).message}`);
      }
      acl.topicExchange = m.topicExchange;
      this.core.access = acl;
    }
    this.mqtt = new MqttContext(this.core, settings, users, this.log.child('mqtt'), this, this);
    this.amqp = new AmqpContext(this.core, { ...this.config.amqp }, users, this.log.child('amqp'), packageVersion());
    const lim = this.config.limits;
    this.alarms = new Alarms(
      {
        memoryHighWatermark: lim.memoryHighWatermark,
        diskFreeLimit: lim.diskFreeLimit,
        dataDir: this.config.storage.persistence ? this.config.storage.dataDir : undefined,
        checkInterval: lim.alarmCheckInterval,
      },
      this.log.child('alarms'),
    );
    this.alarms.onChange((blocked) => {
      this.mqtt.setPublishersBlocked(blocked);
      this.amqp.setPublishersBlocked(blocked ? this.alarms.describe() : undefined);
    });
  }

  /** Every opened listener with its actual port (ephemeral ports resolved). */
  get addresses(): ListenerAddress[] {
    return this.openListeners.map((l) => l.address);
  }

  address(name: ListenerName): ListenerAddress | undefined {
    return this.openListeners.find((l) => l.address.name === name)?.address;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`broker cannot start: it is ${this.state}`);
    this.state = 'starting';
    const L = this.config.listeners;
    try {
      await this.openStore();
      await this.alarms.start();
      this.mqtt.start();
      this.amqp.start();
      if (L.mqtt) {
        const l = await this.open(
          'mqtt',
          listenTcp(L.mqtt, (c) => this.acceptMqtt(c)),
          L.mqtt.port,
        );
        this.add('mqtt', l);
      }
      if (L.ws) {
        const l = await this.open(
          'ws',
          listenWebSocket(L.ws, (c) => this.acceptMqtt(c)),
          L.ws.port,
        );
        this.add('ws', l, L.ws.path);
      }
      if (L.amqp) {
        const l = await this.open(
          'amqp',
          listenTcp(L.amqp, (c) => this.acceptAmqp(c)),
          L.amqp.port,
        );
        this.add('amqp', l);
      }
      for (const name of ['mqtts', 'wss', 'amqps'] as const) {
        if (L[name]) this.log.warn(`listener ${name} is configured but TLS listeners are not built yet; not opened`);
      }
      if (L.http) {
        const http = await this.open(
          'http',
          startHttpServer({
            port: L.http.port,
            host: L.http.host,
            logger: this.log.child('http'),
            health: () => ({ ok: this.state === 'running' }),
          }),
          L.http.port,
        );
        this.openListeners.push({
          address: { name: 'http', host: L.http.host, port: http.address.port },
          close: () => http.close(),
        });
      }
    } catch (err) {
      this.alarms.stop();
      await this.closeAll();
      await this.closeStore();
      this.state = 'stopped';
      throw err;
    }
    this.state = 'running';
    this.log.info('broker started', {
      listeners: this.addresses.map((a) => `${a.name}=${a.port}`).join(','),
    });
  }

  /** Opens the embedded store and replays it into the core before any listener opens. */
  private async openStore(): Promise<void> {
    const st = this.config.storage;
    if (!st.persistence) return;
    const log = this.log.child('store');
    const store = createEmbeddedStore({ dir: st.dataDir, logger: log });
    const defs = await store.open();
    this.store = store;
    const counts = this.core.recover(store, defs);
    const sessions = this.mqtt.restoreSessions(
      (vhost, clientId, queue) => new Session(this.mqtt, vhost, clientId, queue),
    );
    log.info('store recovered', { dir: st.dataDir, ...counts, mqttSessions: sessions });
  }

  private async open<T>(name: ListenerName, p: Promise<T>, port: number): Promise<T> {
    try {
      return await p;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'address in use' : e.code === 'EACCES' ? 'permission denied' : e.message;
      throw new Error(`cannot open listener ${name} on port ${port}: ${why}`, { cause: err });
    }
  }

  private add(name: ListenerName, l: OpenListener, path?: string): void {
    this.openListeners.push({
      address: { name, host: l.host, port: l.port, ...(path !== undefined && { path }) },
      close: () => l.close(),
    });
  }

  private acceptMqtt(conn: ByteConnection): void {
    if (!this.admit(conn)) return;
    new MqttConnection(this.mqtt, conn);
    this.emit('connection', { id: conn.id, transport: conn.transport, remoteAddress: conn.remoteAddress });
  }

  private acceptAmqp(conn: ByteConnection): void {
    if (!this.admit(conn)) return;
    new AmqpConnection(this.amqp, conn);
    this.emit('connection', { id: conn.id, transport: conn.transport, remoteAddress: conn.remoteAddress });
  }

  /** Running, and below `limits.maxConnections` over every protocol. */
  private admit(conn: ByteConnection): boolean {
    if (this.state !== 'running' && this.state !== 'starting') {
      conn.destroy();
      return false;
    }
    const max = this.config.limits.maxConnections;
    if (max > 0 && this.mqtt.stats.connections + this.amqp.stats.connections >= max) {
      this.log.warn('connection refused: limits.maxConnections reached', { remote: conn.remoteAddress, max });
      conn.destroy();
      return false;
    }
    return true;
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    for (const c of this.mqtt.connections) {
      if (c instanceof MqttConnection) c.serverShutdown();
    }
    for (const c of this.amqp.connections) {
      if (c instanceof AmqpConnection) c.serverShutdown();
    }
    await this.closeAll();
    this.mqtt.stop();
    this.amqp.stop();
    this.alarms.stop();
    await this.closeStore();
    this.state = 'stopped';
    this.log.info('broker stopped');
  }

  private async closeStore(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    if (store === undefined) return;
    this.core.detachStore();
    try {
      await store.close();
    } catch (err) {
      this.log.error('store close failed', { error: String(err) });
    }
  }

  private async closeAll(): Promise<void> {
    const ls = this.openListeners.splice(0);
    await Promise.all(ls.map((l) => l.close().catch(() => {})));
  }
}
