import http from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { ByteConnection, ByteConnectionHandlers, TransportKind } from '../util/byte-connection.js';
import { isLoopbackAddress } from '../util/byte-connection.js';
import { CLOSE_LINGER_MS, listenServer, type OpenListener } from './tcp.js';

/** MQTT over WebSocket subprotocols (MQTT 5.0 §6: "mqtt"; 3.1 clients used "mqttv3.1"). */
const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

let nextWsId = 1;

/**
 * A WebSocket as a ByteConnection. MQTT packets may span frames [MQTT-6.0.0-2], so writes made in
 * one event-loop turn are joined into one binary frame.
 */
class WebSocketConnection implements ByteConnection {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly isLoopback: boolean;
  private handlers: ByteConnectionHandlers | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closedFlag = false;
  private readonly raw: Duplex | undefined;

  constructor(
    private readonly ws: WebSocket,
    req: http.IncomingMessage,
    readonly transport: TransportKind,
  ) {
    this.id = `${transport}-${nextWsId++}`;
    this.remoteAddress = req.socket.remoteAddress ?? '';
    this.remotePort = req.socket.remotePort ?? 0;
    this.isLoopback = isLoopbackAddress(req.socket.remoteAddress);
    this.raw = req.socket;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // [MQTT-6.0.0-1]: MQTT travels in binary frames; a text frame closes the connection.
      if (!isBinary) {
        this.destroy();
        return;
      }
      this.handlers?.data(data);
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.closedFlag) return;
      this.closedFlag = true;
      this.handlers?.close(false);
    });
    this.raw.on('drain', () => this.handlers?.drain());
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount + this.pendingBytes + (this.raw?.writableLength ?? 0);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  setHandlers(h: ByteConnectionHandlers): void {
    this.handlers = h;
  }

  write(chunk: Buffer): void {
    if (this.closedFlag) return;
    if (this.pending.length === 0) process.nextTick(flushWs, this);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  flush(): void {
    if (this.pending.length === 0 || this.closedFlag) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.ws.send(data, { binary: true });
  }

  pauseReading(): void {
    this.ws.pause();
  }

  resumeReading(): void {
    this.ws.resume();
  }

  end(): void {
    this.flush();
    this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), CLOSE_LINGER_MS).unref();
    this.ws.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.pending = [];
    this.ws.terminate();
  }
}

function flushWs(c: WebSocketConnection): void {
  c.flush();
}

export interface WsListenOptions {
  port: number;
  host: string;
  path: string;
}

/** Opens an HTTP server that upgrades `path` to WebSocket and hands each socket to `onConnection`. */
export function listenWebSocket(
  opts: WsListenOptions,
  onConnection: (c: ByteConnection) => void,
): Promise<OpenListener & { path: string }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
    res.end(`MQTT over WebSocket is served at ${opts.path}\n`);
  });
  const sockets = new Set<{ destroy(): void }>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({
    server,
    path: opts.path,
    maxPayload: 268435455 + 5,
    perMessageDeflate: false,
    handleProtocols: (protocols) => {
      for (const p of MQTT_SUBPROTOCOLS) if (protocols.has(p)) return p;
      return false;
    },
  });
  wss.on('connection', (ws, req) => onConnection(new WebSocketConnection(ws, req, 'ws')));
  return listenServer(server, opts, sockets).then((l) => ({
    ...l,
    path: opts.path,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await l.close();
    },
  }));
}
