/**
 * The narrow interface between the core and durable storage (DESIGN.md "Storage"). The core
 * calls the write methods synchronously as state changes; an implementation queues them and
 * commits everything written during one event-loop turn as one transaction (group commit).
 * `whenDurable` is how a caller learns that what it wrote is on disk (fsync'd): publisher
 * confirms and MQTT PUBACK/PUBREC for persistent messages wait for it, nothing else does.
 *
 * Reads are synchronous: the embedded store is memory-mapped (LMDB), so paging a queue's next
 * batch in from disk costs a lookup, not an event-loop turn.
 *
 * Nothing here knows a protocol; records are plain data. Keys are vhost-scoped names, and a
 * queue's messages are keyed by the queue's own increasing sequence number.
 */

/** A header value as the core's message carries it (see core/message.ts HeaderValue). */
export type StoredValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Buffer
  | Date
  | StoredValue[]
  | { readonly [key: string]: StoredValue };

export interface ExchangeRecord {
  readonly vhost: string;
  readonly name: string;
  readonly kind: string;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly args: Readonly<Record<string, StoredValue>>;
}

export interface QueueRecord {
  readonly vhost: string;
  readonly name: string;
  readonly autoDelete: boolean;
  readonly args: Readonly<Record<string, StoredValue>>;
}

export interface BindingRecord {
  readonly vhost: string;
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: 'queue' | 'exchange';
  readonly bindingKey: string;
  readonly args: Readonly<Record<string, StoredValue>>;
  readonly noDollarWildcard: boolean;
}

/** A message as stored: the core message without its process-local id. */
export interface MessageRecord {
  readonly vhost: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  /** Core MessageProperties (headers as ordered pairs). */
  readonly properties: Readonly<Record<string, StoredValue>>;
  readonly annotations: Readonly<Record<string, StoredValue>>;
  readonly publisherId: string | undefined;
  readonly expiresAt: number | undefined;
  readonly createdAt: number;
}

/** One message in a durable queue. */
export interface QueueEntry {
  readonly seq: number;
  readonly message: MessageRecord;
  /** Handed to a consumer before (AMQP redelivered, MQTT DUP on resend). */
  readonly delivered: boolean;
  /** Deliveries so far (quorum x-delivery-limit); at least 1 when `delivered`. */
  readonly deliveryCount: number;
  /** Opaque per-delivery state an adapter attached (an MQTT packet id, PUBREC received...). */
  readonly tag: StoredValue | undefined;
  /** A transient message written only because the queue was paging; dropped at recovery. */
  readonly transient: boolean;
  /**
   * The bindings the message was routed through, as [source, bindingKey] pairs: after a restart
   * the queue resolves them to its current bindings (MQTT takes the granted QoS and subscription
   * identifiers from them). Stored as given.
   */
  readonly routes?: StoredValue;
}

/** Everything the store holds, read at start-up (messages excepted: those are paged). */
export interface RecoveredDefinitions {
  readonly vhosts: readonly string[];
  readonly exchanges: readonly ExchangeRecord[];
  readonly queues: readonly QueueRecord[];
  readonly bindings: readonly BindingRecord[];
  readonly retained: ReadonlyArray<{ vhost: string; routingKey: string; message: MessageRecord }>;
  /** Adapter-owned records (MQTT sessions, delayed wills), by namespace then key. */
  readonly records: ReadonlyMap<string, ReadonlyMap<string, StoredValue>>;
}

export interface QueueStats {
  /** Entries stored for the queue, and the sequence number after the highest. */
  readonly count: number;
  readonly bytes: number;
  readonly nextSeq: number;
}

export interface Store {
  /** Opens (creating if absent) and checks the format; throws StoreError on damage or an unknown version. */
  open(): Promise<RecoveredDefinitions>;
  /** Commits what is pending and closes. */
  close(): Promise<void>;

  putVhost(vhost: string): void;
  removeVhost(vhost: string): void;
  putExchange(x: ExchangeRecord): void;
  removeExchange(vhost: string, name: string): void;
  putQueue(q: QueueRecord): void;
  /** Removes the queue, its bindings are removed by the caller, and every entry it holds. */
  removeQueue(vhost: string, name: string): void;
  putBinding(b: BindingRecord): void;
  removeBinding(b: BindingRecord): void;
  putRetained(vhost: string, routingKey: string, message: MessageRecord): void;
  removeRetained(vhost: string, routingKey: string): void;

  /** Adds a message to a durable queue at `seq` (increasing per queue). */
  putEntry(vhost: string, queue: string, entry: QueueEntry): void;
  /** Records a hand-out: delivered flag, count and the adapter's tag. */
  markDelivered(vhost: string, queue: string, seq: number, deliveryCount: number, tag?: StoredValue): void;
  removeEntry(vhost: string, queue: string, seq: number): void;
  /** Entries with seq > `afterSeq`, in order, at most `limit` (paging in, recovery). Synchronous. */
  readEntries(vhost: string, queue: string, afterSeq: number, limit: number): QueueEntry[];
  queueStats(vhost: string, queue: string): QueueStats;

  /** Adapter-owned records: `namespace` such as 'mqtt.session'; `value` undefined removes. */
  putRecord(namespace: string, key: string, value: StoredValue | undefined): void;

  /**
   * Calls `cb` once every write issued so far is durable (one fsync'd transaction per turn).
   * With nothing pending it still calls back asynchronously, in order with other callbacks.
   * `cb(err)` when the commit failed: the caller must not acknowledge.
   */
  whenDurable(cb: (err?: Error) => void): void;
  /** True when writes are queued that are not yet durable. */
  readonly pending: boolean;
  /** False before `open()` resolves and after `close()` starts: writes then are refused. */
  readonly isOpen: boolean;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
}
