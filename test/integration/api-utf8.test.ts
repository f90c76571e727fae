// The HTTP API refuses text that is not UTF-8 wherever a body carries it
// (unit options, metadata patches): 400 naming the field, nothing written to
// etcd. Real bytes over a real socket, a real etcd behind.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/api/index.js';
import type { Registry } from '../../src/registry/index.js';
import { useEtcd } from '../helpers/etcd.js';
import { testRegistry } from '../helpers/registry.js';

const etcd = useEtcd();
let dir: string;
let socketPath: string;
let registry: Registry;
let server: ApiServer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-api-utf8-'));
  socketPath = path.join(dir, 'api.sock');
  registry = testRegistry(etcd.endpoints);
  server = new ApiServer({ registry, socketPath });
  await server.start();
});

afterAll(async () => {
  await server?.stop();
  registry?.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(method: string, urlPath: string, body?: Buffer): Promise<{ status: number; json: { error?: { message: string } } | undefined }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } : {};
    const req = http.request({ socketPath, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** JSON text with the bytes ff fe where `<FFFE>` is written. */
const withBadBytes = (json: string): Buffer => {
  const [before, after] = json.split('<FFFE>');
  return Buffer.concat([Buffer.from(before!), Buffer.from([0xff, 0xfe]), Buffer.from(after!)]);
};

async function storedKeys(): Promise<string[]> {
  return (await registry.client.getAll().prefix(registry.keys.prefix).keys()).sort();
}

const UNIT = (description: string): string =>
  `{"desiredState":"launched","options":[{"section":"Unit","name":"Description","value":"${description}"},{"section":"Service","name":"ExecStart","value":"/bin/x"}]}`;

describe('API: text that is not UTF-8', () => {
  it('refuses a unit whose options are not UTF-8 with 400 naming the field, and writes nothing', async () => {
    const bytes = withBadBytes(UNIT('caf<FFFE>'));
    const offset = bytes.indexOf(0xff);
    const r = await request('PUT', '/fleet/v1/units/x.service', bytes);
    expect(r).toEqual({
      status: 400,
      json: { error: { code: 400, message: `in the request body, options[0].value is not valid UTF-8 (byte 0xff at offset ${offset})` } },
    });
    const name = await request('PUT', '/fleet/v1/units/x.service', withBadBytes(`{"desiredState":"inactive","options":[{"section":"Unit","name":"Desc<FFFE>","value":"x"}]}`));
    expect(name.json?.error?.message).toMatch(/^in the request body, options\[0\]\.name is not valid UTF-8 \(byte 0xff at offset \d+\)$/);
    const lone = await request('PUT', '/fleet/v1/units/x.service', Buffer.from(UNIT('caf\\uD800')));
    expect(lone).toEqual({
      status: 400,
      json: { error: { code: 400, message: 'in the request body, options[0].value is not valid UTF-8 (lone surrogate \\uD800 at character 3)' } },
    });
    const path = await request('PUT', '/fleet/v1/units/%FF%FE.service', Buffer.from(UNIT('x')));
    expect(path.status).toBe(400);
    expect(await storedKeys()).toEqual([]);
  });

  it('takes text that is UTF-8, whatever its script, and stores it as sent', async () => {
    const r = await request('PUT', '/fleet/v1/units/ok.service', Buffer.from(UNIT('café ☕ \\uD83D\\uDE00 日本')));
    expect(r.status).toBe(201);
    expect((await registry.getUnit('ok.service'))?.text).toContain('Description=café ☕ 😀 日本\n');
    expect((await request('DELETE', '/fleet/v1/units/ok.service')).status).toBe(204);
  });

  it('refuses metadata that is not UTF-8 with 400 naming the operation, and writes nothing', async () => {
    const m = '0123456789abcdef0123456789abcdef';
    const bytes = withBadBytes(`[{"op":"add","path":"/${m}/metadata/ok","value":"fine"},{"op":"add","path":"/${m}/metadata/zone","value":"<FFFE>"}]`);
    expect((await request('PATCH', '/fleet/v1/machines', bytes)).json?.error?.message).toBe(
      `in the request body, [1].value is not valid UTF-8 (byte 0xff at offset ${bytes.indexOf(0xff)})`,
    );
    const inPath = withBadBytes(`[{"op":"add","path":"/${m}/metadata/z<FFFE>","value":"a"}]`);
    expect(await request('PATCH', '/fleet/v1/machines', inPath)).toEqual({
      status: 400,
      json: { error: { code: 400, message: `in the request body, [0].path is not valid UTF-8 (byte 0xff at offset ${inPath.indexOf(0xff)})` } },
    });
    const lone = Buffer.from(`[{"op":"add","path":"/${m}/metadata/ok","value":"fine"},{"op":"add","path":"/${m}/metadata/zone","value":"a\\uDC00"}]`);
    expect(await request('PATCH', '/fleet/v1/machines', lone)).toEqual({
      status: 400,
      json: { error: { code: 400, message: 'in the request body, [1].value is not valid UTF-8 (lone surrogate \\uDC00 at character 1)' } },
    });
    expect(await storedKeys()).toEqual([]);
  });
});
