import { describe, expect, it } from 'vitest';
import { checkInstance, checkService, defaultInstance, instanceLabel, parseHostPort } from '../../../src/discovery/names.js';
import { parseListen } from '../../../src/discovery/dns-server.js';

describe('discovery names', () => {
  it('accepts DNS labels as service names and refuses the rest', () => {
    for (const ok of ['web', 'a', 'web-1', '0db', 'x'.repeat(63)]) expect(checkService(ok)).toBe(ok);
    for (const bad of ['', 'Web', 'web_1', '-web', 'web-', 'a.b', 'a/b', 'x'.repeat(64)]) expect(() => checkService(bad)).toThrow(/DNS label/);
    // ns.<domain> is the DNS front's own name (its NS record).
    expect(() => checkService('ns')).toThrow(/"ns" is reserved/);
  });

  it('refuses instance names with / or white space', () => {
    expect(checkInstance('web@8080.service')).toBe('web@8080.service');
    for (const bad of ['', 'a/b', 'a b', 'a\n', 'x'.repeat(201)]) expect(() => checkInstance(bad)).toThrow(/instance/);
  });

  it('parses HOST:PORT and [V6]:PORT', () => {
    expect(parseHostPort('127.0.0.11:8080')).toEqual({ host: '127.0.0.11', port: 8080 });
    expect(parseHostPort('web.example:80')).toEqual({ host: 'web.example', port: 80 });
    expect(parseHostPort('[::1]:53')).toEqual({ host: '::1', port: 53 });
    for (const bad of ['127.0.0.1', ':80', '::1:80', 'h:0', 'h:65536', 'h:8x']) expect(() => parseHostPort(bad)).toThrow();
    expect(defaultInstance('::1', 80)).toBe('[::1]:80');
    expect(defaultInstance('10.0.0.1', 80)).toBe('10.0.0.1:80');
  });

  it('turns instance names into DNS labels', () => {
    expect(instanceLabel('web@8080.service')).toBe('web-8080-service');
    expect(instanceLabel('127.0.0.11:8080')).toBe('127-0-0-11-8080');
    expect(instanceLabel('@@@')).toBe('endpoint');
    expect(instanceLabel('a'.repeat(80))).toHaveLength(63);
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.11')).toEqual({ host: '127.0.0.11', port: 53 });
    expect(parseListen('127.0.0.11:5353')).toEqual({ host: '127.0.0.11', port: 5353 });
    expect(parseListen('[::1]:5353')).toEqual({ host: '::1', port: 5353 });
    expect(() => parseListen('localhost:53')).toThrow(/listen/);
  });
});
