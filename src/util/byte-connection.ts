/**
 * What a protocol adapter sees of a client connection, whatever the transport (TCP, TLS,
 * WebSocket). Lives in util/ so adapters need not import transport/ (DESIGN.md layers).
 */
export type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss';

export interface ByteConnectionHandlers {
  data(chunk: Buffer): void;
  /** The peer or the network closed the connection, or `destroy()` was called. Called once. */
  close(hadError: boolean): void;
  /** Unsent bytes fell below the high-water mark after `bufferedBytes` had grown. */
  drain(): void;
}

export interface ByteConnection {
  readonly id: string;
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly isLoopback: boolean;
  /** Bytes accepted by `write` and not yet handed to the kernel. */
  readonly bufferedBytes: number;
  readonly closed: boolean;
  setHandlers(h: ByteConnectionHandlers): void;
  /** Queues bytes; writes in one event-loop turn go out together (STYLE.md habit 9). */
  write(chunk: Buffer): void;
  pauseReading(): void;
  resumeReading(): void;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
}

const LOOPBACK_V4 = /^127\./;

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  if (addr === '::1') return true;
  if (addr.startsWith('::ffff:')) return LOOPBACK_V4.test(addr.slice(7));
  return LOOPBACK_V4.test(addr);
}
