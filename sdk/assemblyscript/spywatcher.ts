// Spywatcher plugin helpers for AssemblyScript, on top of the official
// Extism PDK (@extism/as-pdk): event and request types, a small JSON
// reader and writer (AssemblyScript has no reflection-based JSON), and
// typed wrappers of the Spywatcher host functions (PLUGINS.md, "Host
// functions"). Copy this file next to your plugin (spywatcher plugin new
// does) or import it by path.
//
// Build with assemblyscript 0.28 and `--use abort=<this file's path without
// .ts>/pluginAbort` (for example abort=assembly/spywatcher/pluginAbort), so
// that an abort becomes a plugin error instead of an import the host does
// not offer.

import { Config, Host, Memory } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";

// ---- Spywatcher host functions (module extism:host/user) ----
// Each takes the offset of a kernel block with a JSON request and returns
// the offset of a block with {"result": ...} or {"error": {...}}.
@external("extism:host/user", "kv_get") declare function host_kv_get(off: u64): u64;
@external("extism:host/user", "kv_set") declare function host_kv_set(off: u64): u64;
@external("extism:host/user", "kv_delete") declare function host_kv_delete(off: u64): u64;
@external("extism:host/user", "kv_list") declare function host_kv_list(off: u64): u64;
@external("extism:host/user", "log") declare function host_log(off: u64): u64;
@external("extism:host/user", "metric") declare function host_metric(off: u64): u64;
@external("extism:host/user", "member_get") declare function host_member_get(off: u64): u64;
@external("extism:host/user", "activity_get") declare function host_activity_get(off: u64): u64;
@external("extism:host/user", "emit") declare function host_emit(off: u64): u64;
@external("extism:host/user", "http_fetch") declare function host_http_fetch(off: u64): u64;
@external("extism:host/env", "length") declare function kernel_length(off: u64): u64;

// Event kinds (sdk/go/event).
export namespace Kind {
  export const PresenceUpdate = "presence.update";
  export const MessageCreate = "message.create";
  export const MessageUpdate = "message.update";
  export const MessageDelete = "message.delete";
  export const TypingStart = "typing.start";
  export const MemberJoin = "member.join";
  export const MemberLeave = "member.leave";
  export const MemberUpdate = "member.update";
  export const BanAdd = "ban.add";
  export const BanRemove = "ban.remove";
  export const VoiceState = "voice.state";
  export const GuildUpdate = "guild.update";
  export const ChannelUpdate = "channel.update";
}

// ---- JSON reading ----

function isSpace(c: u8): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

// Json is a value inside a UTF-8 JSON document, read lazily: nothing is
// decoded until asked for.
export class Json {
  constructor(public buf: Uint8Array, public start: i32, public end: i32) {}

  static parse(buf: Uint8Array): Json {
    let s = 0;
    while (s < buf.length && isSpace(buf[s])) s++;
    return new Json(buf, s, skipValue(buf, s));
  }

  static fromString(s: string): Json {
    return Json.parse(Uint8Array.wrap(String.UTF8.encode(s)));
  }

  get valid(): bool {
    return this.end > this.start;
  }

  isString(): bool {
    return this.valid && this.buf[this.start] == 0x22;
  }

  // get returns the member key of an object (invalid when absent).
  get(key: string): Json {
    const b = this.buf;
    let p = this.start;
    if (!this.valid || b[p] != 0x7b) return new Json(b, 0, 0);
    p++;
    while (p < this.end) {
      while (p < this.end && (isSpace(b[p]) || b[p] == 0x2c)) p++;
      if (p >= this.end || b[p] == 0x7d) break;
      const ks = p;
      const ke = skipValue(b, p);
      p = ke;
      while (p < this.end && isSpace(b[p])) p++;
      p++; // ':'
      while (p < this.end && isSpace(b[p])) p++;
      const vs = p;
      const ve = skipValue(b, p);
      if (new Json(b, ks, ke).str() == key) return new Json(b, vs, ve);
      p = ve;
    }
    return new Json(b, 0, 0);
  }

  // items returns the elements of an array.
  items(): Json[] {
    const out = new Array<Json>();
    const b = this.buf;
    let p = this.start;
    if (!this.valid || b[p] != 0x5b) return out;
    p++;
    while (p < this.end) {
      while (p < this.end && (isSpace(b[p]) || b[p] == 0x2c)) p++;
      if (p >= this.end || b[p] == 0x5d) break;
      const e = skipValue(b, p);
      out.push(new Json(b, p, e));
      p = e;
    }
    return out;
  }

  // str decodes a JSON string ("" for anything else).
  str(): string {
    if (!this.isString()) return "";
    const b = this.buf;
    let plain = true;
    for (let i = this.start + 1; i < this.end - 1; i++) {
      if (b[i] == 0x5c) {
        plain = false;
        break;
      }
    }
    if (plain) return String.UTF8.decodeUnsafe(b.dataStart + this.start + 1, this.end - this.start - 2);
    let out = "";
    let runStart = this.start + 1;
    let i = runStart;
    while (i < this.end - 1) {
      if (b[i] != 0x5c) {
        i++;
        continue;
      }
      out += String.UTF8.decodeUnsafe(b.dataStart + runStart, i - runStart);
      const c = b[i + 1];
      if (c == 0x6e) out += "\n";
      else if (c == 0x74) out += "\t";
      else if (c == 0x72) out += "\r";
      else if (c == 0x62) out += "\b";
      else if (c == 0x66) out += "\f";
      else if (c == 0x75) {
        let cp: i32 = 0;
        for (let k = 2; k < 6; k++) {
          const h = b[i + k];
          cp = cp * 16 + (h >= 0x61 ? h - 0x61 + 10 : h >= 0x41 ? h - 0x41 + 10 : h - 0x30);
        }
        out += String.fromCharCode(cp);
        i += 4;
      } else out += String.fromCharCode(c);
      i += 2;
      runStart = i;
    }
    return out + String.UTF8.decodeUnsafe(b.dataStart + runStart, this.end - 1 - runStart);
  }

  // num returns a number (0 for anything else).
  num(): f64 {
    if (!this.valid || this.isString()) return 0;
    return parseFloat(String.UTF8.decodeUnsafe(this.buf.dataStart + this.start, this.end - this.start));
  }

  bool(): bool {
    return this.valid && this.buf[this.start] == 0x74; // true
  }

  // raw is the value's JSON text.
  raw(): string {
    return String.UTF8.decodeUnsafe(this.buf.dataStart + this.start, this.end - this.start);
  }
}

function skipValue(b: Uint8Array, p: i32): i32 {
  const n = b.length;
  while (p < n && isSpace(b[p])) p++;
  if (p >= n) return p;
  const c = b[p];
  if (c == 0x22) {
    p++;
    while (p < n) {
      if (b[p] == 0x5c) p += 2;
      else if (b[p] == 0x22) return p + 1;
      else p++;
    }
    return n;
  }
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (p < n) {
      const d = b[p];
      if (d == 0x22) {
        p = skipValue(b, p);
        continue;
      }
      if (d == 0x7b || d == 0x5b) depth++;
      else if (d == 0x7d || d == 0x5d) {
        depth--;
        if (depth == 0) return p + 1;
      }
      p++;
    }
    return n;
  }
  while (p < n && b[p] != 0x2c && b[p] != 0x7d && b[p] != 0x5d && !isSpace(b[p])) p++;
  return p;
}

// ---- JSON writing ----

// quote returns s as a JSON string literal.
export function quote(s: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(run, i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x09) out += "\\t";
    else if (c == 0x0d) out += "\\r";
    else out += "\\u00" + (c < 16 ? "0" : "") + c.toString(16);
    run = i + 1;
  }
  return out + s.substring(run) + '"';
}

// ---- base64 (bytes travel as base64 inside JSON) ----

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function base64Encode(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i += 3) {
    const v: u32 = (u32(b[i]) << 16) | (i + 1 < b.length ? u32(b[i + 1]) << 8 : 0) | (i + 2 < b.length ? u32(b[i + 2]) : 0);
    out += B64.charAt((v >> 18) & 63) + B64.charAt((v >> 12) & 63);
    out += i + 1 < b.length ? B64.charAt((v >> 6) & 63) : "=";
    out += i + 2 < b.length ? B64.charAt(v & 63) : "=";
  }
  return out;
}

export function base64Decode(s: string): Uint8Array {
  const out = new Uint8Array((s.length * 3) / 4);
  let acc: u32 = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const k = B64.indexOf(s.charAt(i));
    if (k < 0) continue;
    acc = (acc << 6) | u32(k);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = u8((acc >> bits) & 0xff);
    }
  }
  return out.subarray(0, n);
}

// ---- the plugin's side of a call ----

// input returns the hook's input as a JSON value.
export function input(): Json {
  return Json.parse(Host.input());
}

// output sets the hook's output. Host.outputString is not used: in as-pdk
// 1.0.0 it takes the UTF-16 length for the byte length.
export function output(s: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(s)));
}

// fail reports err for this call; return its result from the hook.
export function fail(err: string): i32 {
  const m = Memory.allocateString(err);
  error_set(m.offset);
  return 1;
}

// pluginAbort turns an AssemblyScript abort into a plugin error (see the
// --use flag above).
export function pluginAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  fail("abort: " + (message ? message : "") + " at " + (fileName ? fileName : "") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

// guildId is the guild this instance serves; pluginId the plugin's own ID.
export function guildId(): string {
  const v = Config.get("spywatcher.guild_id");
  return v ? v : "";
}
export function pluginId(): string {
  const v = Config.get("spywatcher.plugin_id");
  return v ? v : "";
}

// config is the guild admin's configuration (a JSON object, validated by
// the host against the manifest's config_schema).
export function config(): Json {
  const v = Config.get("spywatcher.config");
  return Json.fromString(v ? v : "{}");
}

// Event is one event of an on_events batch.
export class Event {
  constructor(public json: Json) {}
  get id(): string {
    return this.json.get("id").str();
  }
  get kind(): string {
    return this.json.get("kind").str();
  }
  get guildId(): string {
    return this.json.get("guild_id").str();
  }
  get userId(): string {
    return this.json.get("user_id").str();
  }
  get channelId(): string {
    return this.json.get("channel_id").str();
  }
  // at is the RFC 3339 time of the event.
  get at(): string {
    return this.json.get("at").str();
  }
  // data is the kind's payload (sdk/go/event); message content is present
  // only with message.content.read.
  get data(): Json {
    return this.json.get("data");
  }
}

// events reads an on_events input (JSON encoding).
export function events(): Event[] {
  const out = new Array<Event>();
  const list = input().get("events").items();
  for (let i = 0; i < list.length; i++) out.push(new Event(list[i]));
  return out;
}

// Request is an http hook call to one of the plugin's routes.
export class Request {
  constructor(public json: Json) {}
  get method(): string {
    return this.json.get("method").str();
  }
  get path(): string {
    return this.json.get("path").str();
  }
  // query returns the first value of a query parameter.
  query(name: string): string {
    const vs = this.json.get("query").get(name).items();
    return vs.length > 0 ? vs[0].str() : "";
  }
  get body(): Uint8Array {
    return base64Decode(this.json.get("body").str());
  }
}

export function request(): Request {
  return new Request(input());
}

// respond answers an http hook call with status and a JSON body.
export function respond(status: i32, jsonBody: string): void {
  const body = base64Encode(Uint8Array.wrap(String.UTF8.encode(jsonBody)));
  output('{"status":' + status.toString() + ',"headers":{"Content-Type":"application/json"},"body":"' + body + '"}');
}

// ---- host functions ----

// lastError is the host's error object of the last failed call, e.g.
// {"code":"denied","message":"..."}.
export let lastError: string = "";

// call sends a JSON request to a host function and returns its result, or
// an invalid Json with lastError set.
export function call(fn: (off: u64) => u64, request: string): Json {
  const req = Memory.allocateString(request);
  const off = fn(req.offset);
  req.free();
  const resp = new Memory(off, kernel_length(off));
  const env = Json.parse(resp.toUint8Array());
  resp.free();
  const err = env.get("error");
  if (err.valid) {
    lastError = err.raw();
    return new Json(env.buf, 0, 0);
  }
  return env.get("result");
}

// denied reports whether the last failure was a missing permission.
export function denied(): bool {
  return lastError.length > 0 && Json.fromString(lastError).get("code").str() == "denied";
}

function ok(r: Json): bool {
  return r.valid;
}

// log writes into the host's log; level is debug, info, warn or error.
export function log(level: string, message: string): bool {
  return ok(call(host_log, '{"level":' + quote(level) + ',"message":' + quote(message) + "}"));
}

// kvGet returns the value under key, or null. Needs kv.read.
export function kvGet(key: string): Uint8Array | null {
  const r = call(host_kv_get, '{"key":' + quote(key) + "}");
  if (!r.valid || !r.get("found").bool()) return null;
  return base64Decode(r.get("value").str());
}

// kvGetString is kvGet for text values ("" when absent).
export function kvGetString(key: string): string {
  const v = kvGet(key);
  return v ? String.UTF8.decode(v.buffer.slice(v.byteOffset, v.byteOffset + v.length)) : "";
}

// kvSet stores value under key. Needs kv.write.
export function kvSet(key: string, value: Uint8Array): bool {
  return ok(call(host_kv_set, '{"key":' + quote(key) + ',"value":"' + base64Encode(value) + '"}'));
}

// kvSetString is kvSet for text values.
export function kvSetString(key: string, value: string): bool {
  return kvSet(key, Uint8Array.wrap(String.UTF8.encode(value)));
}

// kvDelete removes key. Needs kv.write.
export function kvDelete(key: string): bool {
  return ok(call(host_kv_delete, '{"key":' + quote(key) + "}"));
}

// KVEntry is one key and its value.
export class KVEntry {
  constructor(public key: string, public value: Uint8Array) {}
}

// kvList returns up to limit entries whose keys start with prefix. Needs kv.read.
export function kvList(prefix: string, limit: i32 = 100): KVEntry[] {
  const out = new Array<KVEntry>();
  const r = call(host_kv_list, '{"prefix":' + quote(prefix) + ',"limit":' + limit.toString() + "}");
  const items = r.get("entries").items();
  for (let i = 0; i < items.length; i++) {
    out.push(new KVEntry(items[i].get("key").str(), base64Decode(items[i].get("value").str())));
  }
  return out;
}

// metric adds delta to the plugin's counter name. Needs metrics.write.
export function metric(name: string, delta: f64 = 1): bool {
  return ok(call(host_metric, '{"name":' + quote(name) + ',"delta":' + delta.toString() + "}"));
}

// emit publishes an event for the guild's dashboards; dataJson is a JSON
// document. Needs events.emit.
export function emit(type: string, dataJson: string): bool {
  return ok(call(host_emit, '{"type":' + quote(type) + ',"data":' + dataJson + "}"));
}

// memberGet returns a member profile (invalid Json when refused or
// unknown). Needs members.read.
export function memberGet(userId: string): Json {
  return call(host_member_get, '{"user_id":' + quote(userId) + "}");
}

// activityGet returns the hourly activity of the guild (userId "") or a
// member between from and to (RFC 3339). Needs activity.read.
export function activityGet(userId: string, from: string, to: string): Json {
  return call(host_activity_get, '{"user_id":' + quote(userId) + ',"from":' + quote(from) + ',"to":' + quote(to) + "}").get("hours");
}

// fetch sends an HTTP request through the host's guarded client (only to
// hosts granted with http.fetch). Body and the response body are base64 in
// the JSON; the result has status, headers, body.
export function fetch(method: string, url: string, body: string = ""): Json {
  let req = '{"method":' + quote(method) + ',"url":' + quote(url);
  if (body.length > 0) req += ',"body":"' + base64Encode(Uint8Array.wrap(String.UTF8.encode(body))) + '"';
  return call(host_http_fetch, req + "}");
}
