// Answering one DNS query from the endpoint cache (pure: no sockets).
//
//   <service>.<domain>              A / AAAA: the hosts of its endpoints; SRV: one per endpoint
//   _<service>._tcp.<domain>        SRV (the RFC 2782 form), likewise _udp
//   <label>.<service>.<domain>      A / AAAA of one endpoint (the SRV targets; label from its instance)
//   <domain>                        SOA, NS (ns.<domain>)
//   ns.<domain>                     A / AAAA: the DNS front's own address
//
// Unknown names under the domain are NXDOMAIN; names outside it REFUSED.
// Answers about the domain (NOERROR, NXDOMAIN) are authoritative with a
// short TTL; negative ones carry the SOA, whose minimum is the same TTL.
// REFUSED, NOTIMP and FORMERR claim no authority (AA clear).
import { isIPv4, isIPv6 } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type Packet, type Question } from 'dns-packet';
import type { EndpointRecord } from '../registry/index.js';
import { NAME_SERVER_LABEL, instanceLabel } from './names.js';

export const DEFAULT_DNS_DOMAIN = 'flotilla.local.';
export const DEFAULT_DNS_TTL = 5;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** What answering needs from the cache. */
export interface EndpointSource {
  has(service: string): boolean;
  endpoints(service: string): readonly EndpointRecord[];
  byLabel(service: string, label: string): EndpointRecord | undefined;
  readonly revision: number;
}

export interface AnswerOptions {
  /** e.g. `flotilla.local.` (case and the final dot do not matter). */
  domain: string;
  /** Seconds. */
  ttl: number;
  /** The address `ns.<domain>` (the NS and SOA name) resolves to: the DNS front's own. */
  nameServer?: string | undefined;
}

/** `Flotilla.Local.` → `flotilla.local`. */
export function normalizeDomain(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/\.+$/, '').replace(/^\.+/, '');
  if (d === '' || d.split('.').some((l) => l === '' || l.length > 63 || !/^[a-z0-9_-]+$/.test(l))) {
    throw new Error(`${JSON.stringify(domain)} is not a DNS domain such as flotilla.local.`);
  }
  return d;
}

export interface LookupResult {
  rcode: number;
  answers: Answer[];
  authorities: Answer[];
  additionals?: Answer[];
}

const UDP_MIN = 512;
const UDP_MAX = 4096;
const TCP_MAX = 65535;

export class DnsAnswerer {
  readonly domain: string;
  readonly ttl: number;
  private readonly nameServer: string | undefined;
  private rotation = 0;

  constructor(
    private readonly source: EndpointSource,
    opts: AnswerOptions,
  ) {
    this.domain = normalizeDomain(opts.domain);
    this.ttl = opts.ttl;
    this.nameServer = opts.nameServer;
  }

  /** The response to a query message, or undefined when it cannot even be read (then nothing is sent). */
  respond(query: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(query);
    } catch {
      if (query.length < 12) return undefined;
      // A header we can read: FORMERR with its ID.
      return header(query.readUInt16BE(0), RCODE.FORMERR);
    }
    if (q.type !== 'query') return undefined;
    const opcode = ((q.flags ?? 0) >> 11) & 0xf;
    const opt = (q.additionals ?? []).find((a) => a.type === 'OPT');
    const limit =
      transport === 'tcp' ? TCP_MAX : opt && 'udpPayloadSize' in opt ? Math.min(UDP_MAX, Math.max(UDP_MIN, opt.udpPayloadSize)) : UDP_MIN;
    const questions = q.questions ?? [];
    const base: Packet = {
      type: 'response',
      id: q.id ?? 0,
      flags: (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED,
      questions,
      answers: [],
      authorities: [],
      additionals: opt ? [{ type: 'OPT', name: '.', udpPayloadSize: UDP_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
    };
    if (opcode !== 0) return encodeWithin({ ...base, flags: (base.flags ?? 0) | RCODE.NOTIMP }, limit);
    const question = questions[0];
    if (questions.length !== 1 || !question) return encodeWithin({ ...base, flags: (base.flags ?? 0) | RCODE.FORMERR }, limit);
    const r = this.lookup(question);
    const authoritative = r.rcode === RCODE.NOERROR || r.rcode === RCODE.NXDOMAIN;
    const packet: Packet = {
      ...base,
      flags: (base.flags ?? 0) | r.rcode | (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0),
      answers: r.answers,
      authorities: r.authorities,
      additionals: [...(r.additionals ?? []), ...(base.additionals ?? [])],
    };
    return encodeWithin(packet, limit);
  }

  /** The answer records for one question. */
  lookup(question: Question): LookupResult {
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const type: string = question.type;
    if (question.class !== undefined && question.class !== 'IN' && question.class !== 'ANY') return this.fail(RCODE.REFUSED);
    if (name === this.domain) {
      if (type === 'SOA' || type === 'ANY') return { rcode: RCODE.NOERROR, answers: [this.soa()], authorities: [] };
      if (type === 'NS') return { rcode: RCODE.NOERROR, answers: [{ type: 'NS', name: this.domain, ttl: this.ttl, data: this.nsName() }], authorities: [] };
      return this.noData();
    }
    if (name === this.nsName()) {
      const answers = this.nameServer === undefined ? [] : this.addresses([{ host: this.nameServer }], name, type);
      return answers.length > 0 ? { rcode: RCODE.NOERROR, answers, authorities: [] } : this.noData();
    }
    if (!name.endsWith(`.${this.domain}`)) return this.fail(RCODE.REFUSED);
    const labels = name.slice(0, -(this.domain.length + 1)).split('.');
    if (labels.length === 1) return this.service(labels[0]!, name, type);
    if (labels.length === 2 && /^_(tcp|udp)$/.test(labels[1]!) && labels[0]!.startsWith('_')) {
      return this.service(labels[0]!.slice(1), name, type === 'ANY' ? 'SRV' : type);
    }
    if (labels.length === 2) {
      const [label, service] = labels as [string, string];
      const e = this.source.byLabel(service, label);
      if (!e) return this.nxdomain();
      const answers = this.addresses([e], name, type);
      return answers.length > 0 ? { rcode: RCODE.NOERROR, answers, authorities: [] } : this.noData();
    }
    return this.nxdomain();
  }

  private service(service: string, name: string, type: string): LookupResult {
    if (!this.source.has(service)) return this.nxdomain();
    const list = this.rotate(this.source.endpoints(service));
    if (list.length === 0) return this.nxdomain();
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    if (type === 'A' || type === 'AAAA' || type === 'ANY') answers.push(...this.addresses(list, name, type));
    if (type === 'SRV' || type === 'ANY') {
      for (const e of list) {
        const direct = !isIPv4(e.host) && !isIPv6(e.host);
        const target = direct ? e.host.replace(/\.$/, '') : `${instanceLabel(e.instance)}.${service}.${this.domain}`;
        answers.push({
          type: 'SRV',
          name,
          ttl: this.ttl,
          data: { target, port: e.port, priority: num(e.attributes['priority'], 0), weight: num(e.attributes['weight'], 1) },
        });
        if (!direct) additionals.push(...this.addresses([e], target, 'ANY'));
      }
    }
    return answers.length > 0 ? { rcode: RCODE.NOERROR, answers, authorities: [], additionals } : this.noData();
  }

  private nsName(): string {
    return `${NAME_SERVER_LABEL}.${this.domain}`;
  }

  /** A and AAAA records of endpoints' hosts (those that are addresses), without repeats. */
  private addresses(list: readonly Pick<EndpointRecord, 'host'>[], name: string, type: string): Answer[] {
    const out: Answer[] = [];
    const seen = new Set<string>();
    for (const e of list) {
      if (seen.has(e.host)) continue;
      seen.add(e.host);
      if ((type === 'A' || type === 'ANY') && isIPv4(e.host)) out.push({ type: 'A', name, ttl: this.ttl, data: e.host });
      if ((type === 'AAAA' || type === 'ANY') && isIPv6(e.host)) out.push({ type: 'AAAA', name, ttl: this.ttl, data: e.host });
    }
    return out;
  }

  /** Starts each answer at the next endpoint, so clients that take the first spread over all. */
  private rotate(list: readonly EndpointRecord[]): readonly EndpointRecord[] {
    if (list.length < 2) return list;
    const at = this.rotation++ % list.length;
    return at === 0 ? list : [...list.slice(at), ...list.slice(0, at)];
  }

  private soa(): Answer {
    return {
      type: 'SOA',
      name: this.domain,
      ttl: this.ttl,
      data: {
        mname: this.nsName(),
        rname: `hostmaster.${this.domain}`,
        serial: this.source.revision % 2 ** 32,
        refresh: 60,
        retry: 10,
        expire: 60,
        minimum: this.ttl,
      },
    };
  }

  private nxdomain(): LookupResult {
    return { rcode: RCODE.NXDOMAIN, answers: [], authorities: [this.soa()] };
  }

  private noData(): LookupResult {
    return { rcode: RCODE.NOERROR, answers: [], authorities: [this.soa()] };
  }

  private fail(rcode: number): LookupResult {
    return { rcode, answers: [], authorities: [] };
  }
}

function num(v: string | undefined, dflt: number): number {
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : dflt;
}

function header(id: number, rcode: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(0x8000 | rcode, 2);
  return b;
}

/**
 * Encodes packet within limit bytes: when it does not fit, as many answers
 * as fit are kept, additionals dropped, and the TC flag set (a resolver then
 * asks again over TCP).
 */
/** dns-packet's size of one record (exported by the library, not by its types). */
const answerLength: (a: Answer) => number = (dnsPacket as unknown as { answer: { encodingLength(a: Answer): number } }).answer.encodingLength;

function encodeWithin(packet: Packet, limit: number): Buffer {
  const answers = packet.answers ?? [];
  const size = dnsPacket.encodingLength(packet);
  if (size <= limit) return dnsPacket.encode(packet);
  const opt = (packet.additionals ?? []).filter((a) => a.type === 'OPT');
  const cut = (n: number): Packet => ({
    ...packet,
    flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
    answers: answers.slice(0, n),
    authorities: [],
    additionals: opt,
  });
  // Names are not compressed, so sizes add up: take answers while they fit.
  let room = limit - dnsPacket.encodingLength(cut(0));
  let n = 0;
  while (n < answers.length) {
    room -= answerLength(answers[n]!);
    if (room < 0) break;
    n++;
  }
  return dnsPacket.encode(cut(n));
}
