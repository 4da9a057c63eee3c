/**
 * The HTTP management listener. Today it serves the health checks, which need no login
 * (DESIGN.md "Running it"), in RabbitMQ's shape: 200 `{"status":"ok"}`, or 503
 * `{"status":"failed","reason":...}`. Anything else is a JSON 404.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../util/log.js';

export interface Health {
  ok: boolean;
  /** Shown in the body when not ok (`reason`, failing listeners, ...). */
  detail?: Record<string, unknown>;
}

export interface HttpServerOptions {
  port: number;
  host: string;
  logger: Logger;
  health: () => Health | Promise<Health>;
}

export interface HttpServerHandle {
  server: http.Server;
  /** Where it listens; `port` is the real one when 0 was asked for. */
  address: { host: string; port: number };
  /** Stops listening and drops open connections, keep-alive ones included. */
  close(): Promise<void>;
}

const HEALTH_PATHS = new Set(['/api/health', '/api/health/ready']);

function send(res: http.ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

async function healthBody(health: HttpServerOptions['health']): Promise<[number, unknown]> {
  try {
    const h = await health();
    return h.ok ? [200, { status: 'ok' }] : [503, { status: 'failed', ...h.detail }];
  } catch (err) {
    return [503, { status: 'failed', reason: err instanceof Error ? err.message : String(err) }];
  }
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const { logger } = opts;
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?', 1)[0]!.replace(/(.)\/+$/, '$1');
    const head = method === 'HEAD';
    if (logger.isEnabled('debug')) logger.debug('request', { method, url: req.url });
    if (!HEALTH_PATHS.has(path)) {
      send(res, 404, { error: 'not_found', reason: `no such resource: ${path}` }, head);
      return;
    }
    if (method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: 'method_not_allowed', reason: `${method} is not allowed on ${path}` }, false);
      return;
    }
    healthBody(opts.health)
      .then(([status, body]) => send(res, status, body, head))
      .catch((err: Error) => logger.error('health response failed', { err: err.message }));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
      const wrapped = new Error(`http listener: cannot listen on ${where}: ${err.code ?? err.message}`, { cause: err });
      Object.assign(wrapped, { code: err.code, port: opts.port, address: opts.host, listener: 'http' });
      reject(wrapped);
    };
    server.once('error', onError);
    server.listen({ port: opts.port, host: opts.host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error('http server error', { err: err.message }));

  const info = server.address() as AddressInfo;
  const address = { host: info.address, port: info.port };
  logger.info('http listener open', address);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      // close() waits for every connection to end; keep-alive ones would hold it for 5 s.
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };
  return { server, address, close };
}
