/**
 * cli/http-client.ts — the HTTP client of the CLI and the benchmarks: one request, its status and body as text,
 * over node:http(s) with keep-alive connections.
 *
 * Why not `fetch`: in Node 20, fetch (undici behind WHATWG streams) costs the caller about a core's third to post
 * 70 bodies of 400 KB a second and ~1.6 ms of CPU per small query (measured with bench:http, docs/benchmarks.md) —
 * CPU that a load generator on the daemon's own machine takes from the daemon it measures.
 *
 * Invariant: a request resolves once its whole response body has arrived, or rejects with the socket's error; the
 * client never retries (retrying a POST of events is the caller's decision — ingest is idempotent by event id).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { TallyError } from '../errors.js';

export interface HttpResponse {
  status: number;
  text: string;
}

export class HttpClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly send: typeof http.request;

  /** `maxSockets`: connections kept open to the server, at most (one per concurrent request). */
  constructor(baseUrl: string, maxSockets = 16) {
    let base: URL;
    try {
      base = new URL(baseUrl);
    } catch {
      throw new TallyError('OPTIONS_INVALID', `--url: got ${JSON.stringify(baseUrl)}; want a URL such as http://127.0.0.1:8080`);
    }
    this.base = base;
    const secure = base.protocol === 'https:';
    if (!secure && base.protocol !== 'http:') throw new TallyError('OPTIONS_INVALID', `--url: got ${JSON.stringify(baseUrl)}; want an http:// or https:// URL`);
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    this.send = secure ? https.request : http.request;
  }

  /** `path` includes any query string; `body` is sent with `content-type: type`. */
  request(method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const all: Record<string, string | number> = { ...headers };
    if (body !== undefined) all['content-length'] = Buffer.byteLength(body);
    return new Promise((resolve, reject) => {
      const req = this.send({
        protocol: this.base.protocol, hostname: this.base.hostname, port: this.base.port,
        path: this.base.pathname.replace(/\/$/, '') + path, method, agent: this.agent, headers: all,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Close the kept-open connections. */
  close(): void {
    this.agent.destroy();
  }
}
