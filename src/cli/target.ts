/**
 * cli/target.ts — where CLI commands send events and queries: a daemon URL (HTTP, MessagePack bodies) or a data
 * directory opened in-process. One interface, so `sql`, `import` and `bench ingest` work against either.
 */
import { pack } from 'msgpackr';
import { open, type Tally } from '../db.js';
import { TallyError } from '../errors.js';
import type { IngestResult } from '../ingest/pipeline.js';
import type { QueryResult } from '../query/shape.js';
import type { DatasourceSpec } from '../schema/datasource.js';
import type { FsyncMode } from '../wal/wal.js';
import { HttpClient } from './http-client.js';

export interface Target {
  readonly description: string;
  ensureDatasource(spec: DatasourceSpec): Promise<void>;
  datasource(name: string): Promise<DatasourceSpec>;
  /** `body` may be pre-encoded MessagePack (URL targets), to keep encoding out of a timed loop. */
  ingest(ds: string, events: unknown[] | Buffer): Promise<IngestResult>;
  sql(text: string): Promise<QueryResult>;
  bytesOnDisk(ds: string): Promise<number | null>;
  close(): Promise<void>;
}

export function encodeEvents(events: unknown[]): Buffer {
  return pack(events);
}

class HttpTarget implements Target {
  readonly description: string;
  private readonly client: HttpClient;
  constructor(url: string, private readonly token: string | undefined) {
    this.description = url;
    this.client = new HttpClient(url);
  }

  private async call(method: string, path: string, body?: Buffer | string, type = 'application/json'): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = type;
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    const res = await this.client.request(method, path, body, headers);
    const textBody = res.text;
    const json = textBody.length > 0 ? JSON.parse(textBody) : null;
    if (res.status >= 400) {
      const e = json as { code?: string; message?: string } | null;
      throw new TallyError((e?.code ?? 'INTERNAL') as never, `${method} ${path}: ${res.status} ${e?.message ?? textBody}`);
    }
    return { status: res.status, json };
  }

  async ensureDatasource(spec: DatasourceSpec): Promise<void> {
    await this.call('PUT', `/v1/datasources/${encodeURIComponent(spec.name)}`, JSON.stringify(spec));
  }

  async datasource(name: string): Promise<DatasourceSpec> {
    return (await this.call('GET', `/v1/datasources/${encodeURIComponent(name)}`)).json as DatasourceSpec;
  }

  async ingest(ds: string, events: unknown[] | Buffer): Promise<IngestResult> {
    const body = Buffer.isBuffer(events) ? events : encodeEvents(events);
    return (await this.call('POST', `/v1/datasources/${encodeURIComponent(ds)}/events`, body, 'application/msgpack')).json as IngestResult;
  }

  async sql(text: string): Promise<QueryResult> {
    return (await this.call('POST', '/v1/sql', text, 'text/plain')).json as QueryResult;
  }

  async bytesOnDisk(ds: string): Promise<number | null> {
    const d = (await this.call('GET', `/v1/datasources/${encodeURIComponent(ds)}`)).json as { stats?: { bytesOnDisk?: number } };
    return d.stats?.bytesOnDisk ?? null;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

class LocalTarget implements Target {
  constructor(private readonly db: Tally, readonly description: string, private readonly dir: string | null) {}

  async ensureDatasource(spec: DatasourceSpec): Promise<void> {
    await this.db.createDatasource(spec);
  }

  async datasource(name: string): Promise<DatasourceSpec> {
    return this.db.getDatasource(name);
  }

  async ingest(ds: string, events: unknown[] | Buffer): Promise<IngestResult> {
    if (Buffer.isBuffer(events)) throw new TallyError('REQUEST_INVALID', 'a local target takes events, not encoded bodies');
    return this.db.ingest(ds, events);
  }

  async sql(text: string): Promise<QueryResult> {
    return this.db.sql(text);
  }

  async bytesOnDisk(): Promise<number | null> {
    if (this.dir === null) return null;
    const { readdirSync, statSync } = await import('node:fs');
    const path = await import('node:path');
    let n = 0;
    for (const e of readdirSync(this.dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(path.join(e.parentPath, e.name)).size;
    return n;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

export async function openTarget(o: { url?: string | undefined; dir?: string | undefined; memory?: boolean | undefined; token?: string | undefined; fsync?: string | undefined }): Promise<Target> {
  if (o.url !== undefined) return new HttpTarget(o.url.replace(/\/+$/, ''), o.token);
  const fsync = o.fsync ?? 'always';
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'none') throw new TallyError('OPTIONS_INVALID', `--fsync: got ${JSON.stringify(fsync)}; want always, interval or none`);
  if (o.dir !== undefined) return new LocalTarget(await open({ dir: o.dir, fsync: fsync as FsyncMode }), `dir ${o.dir}`, o.dir);
  if (o.memory === true) return new LocalTarget(await open({ memory: true }), 'in-memory engine', null);
  throw new TallyError('OPTIONS_INVALID', 'want --url http://host:port, --dir PATH or --memory');
}
