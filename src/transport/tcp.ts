import net from 'node:net';
import type { ByteConnection, ByteConnectionHandlers, TransportKind } from '../util/byte-connection.js';
import { isLoopbackAddress } from '../util/byte-connection.js';

let nextConnId = 1;

/**
 * After a close the broker started (DISCONNECT with an error, a refusal), the socket stays
 * half-open this long so the peer can read what was sent before it, and what it still writes
 * (say, PUBRELs for a burst of PUBRECs) is read and dropped instead of met with a reset. A peer
 * that never closes its side is cut off then.
 */
export const CLOSE_LINGER_MS = 10_000;

/**
 * A net.Socket (plain or TLS) as a ByteConnection. Writes made during one event-loop turn are
 * corked and leave in one writev when the turn ends.
 */
export class SocketConnection implements ByteConnection {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly isLoopback: boolean;
  private handlers: ByteConnectionHandlers | undefined;
  private corked = false;
  private closedFlag = false;

  constructor(
    private readonly socket: net.Socket,
    readonly transport: TransportKind,
  ) {
    this.id = `${transport}-${nextConnId++}`;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.isLoopback = isLoopbackAddress(socket.remoteAddress);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.handlers?.data(chunk));
    socket.on('drain', () => this.handlers?.drain());
    socket.on('error', () => {
      // 'close' follows with hadError; the adapter logs the disconnect once there.
    });
    socket.on('close', (hadError) => {
      this.closedFlag = true;
      this.handlers?.close(hadError);
    });
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  get closed(): boolean {
    return this.closedFlag || this.socket.destroyed;
  }

  setHandlers(h: ByteConnectionHandlers): void {
    this.handlers = h;
  }

  write(chunk: Buffer): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.socket.write(chunk);
  }

  flush(): void {
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  end(): void {
    this.flush();
    this.socket.end();
    // A peer that never reads must not keep the socket (and the broker's stop) alive.
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function uncork(conn: SocketConnection): void {
  conn.flush();
}

export interface ListenOptions {
  port: number;
  host: string;
}

export interface OpenListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Opens a TCP listener; every accepted socket becomes a ByteConnection handed to `onConnection`. */
export function listenTcp(opts: ListenOptions, onConnection: (c: ByteConnection) => void): Promise<OpenListener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    onConnection(new SocketConnection(socket, 'tcp'));
  });
  return listenServer(server, opts, sockets);
}

export function listenServer(
  server: net.Server,
  opts: ListenOptions,
  sockets: Set<{ destroy(): void }>,
): Promise<OpenListener> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ port: opts.port, host: opts.host === '::' ? undefined : opts.host }, () => {
      server.off('error', onError);
      const addr = server.address() as net.AddressInfo;
      resolve({
        host: opts.host,
        port: addr.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
