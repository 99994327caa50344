// keyword-alert: alerts moderators when a message mentions a watched
// keyword (scam phrases, slurs, a leaked codename...).
//
// Configuration: {"keywords": ["free nitro", ...], "case_sensitive": false}.
// For every match it counts a hit per keyword, emits keyword.alert to the
// dashboards (with events.emit) and logs it. GET /hits returns the counts.
// Reading message text needs message.content.read; without it the host
// strips the content and the plugin says so in its log, once per batch.
import * as sw from "../../../sdk/assemblyscript/spywatcher";


const DEFAULT_KEYWORDS: string[] = ["free nitro", "steam gift"];

function keywords(caseSensitive: bool): string[] {
  const list = sw.config().get("keywords").items();
  const out = new Array<string>();
  for (let i = 0; i < list.length; i++) out.push(list[i].str());
  const kws = out.length > 0 ? out : DEFAULT_KEYWORDS;
  if (!caseSensitive) for (let i = 0; i < kws.length; i++) kws[i] = kws[i].toLowerCase();
  return kws;
}

function hitsKey(keyword: string): string {
  return "hits:" + keyword;
}

export function on_events(): i32 {
  const caseSensitive = sw.config().get("case_sensitive").bool();
  const kws = keywords(caseSensitive);
  const evs = sw.events();
  const counts = new Map<string, i32>();
  let withoutContent = 0;
  for (let i = 0; i < evs.length; i++) {
    const ev = evs[i];
    if (ev.kind != sw.Kind.MessageCreate && ev.kind != sw.Kind.MessageUpdate) continue;
    const content = ev.data.get("content");
    if (!content.valid) {
      withoutContent++;
      continue;
    }
    const text = caseSensitive ? content.str() : content.str().toLowerCase();
    for (let k = 0; k < kws.length; k++) {
      if (!text.includes(kws[k])) continue;
      counts.set(kws[k], (counts.has(kws[k]) ? counts.get(kws[k]) : 0) + 1);
      const data =
        '{"keyword":' + sw.quote(kws[k]) + ',"user_id":' + sw.quote(ev.userId) +
        ',"channel_id":' + sw.quote(ev.channelId) + ',"message_id":' + sw.quote(ev.data.get("message_id").str()) + "}";
      if (!sw.emit("keyword.alert", data) && !sw.denied()) return sw.fail("emit: " + sw.lastError);
      sw.log("info", "keyword " + sw.quote(kws[k]) + " in a message of " + ev.userId);
    }
  }
  if (withoutContent > 0) {
    sw.log("warn", withoutContent.toString() + " messages arrived without content: grant message.content.read");
  }
  const matched = counts.keys();
  for (let i = 0; i < matched.length; i++) {
    const kw = matched[i];
    const prev = sw.kvGetString(hitsKey(kw));
    const n = (prev.length > 0 ? I32.parseInt(prev) : 0) + counts.get(kw);
    if (!sw.kvSetString(hitsKey(kw), n.toString())) return sw.fail("kv_set: " + sw.lastError);
  }
  return 0;
}

export function http(): i32 {
  const req = sw.request();
  if (req.path != "/hits") {
    sw.respond(404, '{"error":"no such route"}');
    return 0;
  }
  const entries = sw.kvList("hits:");
  let body = '{"hits":{';
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) body += ",";
    const v = String.UTF8.decode(entries[i].value.buffer.slice(entries[i].value.byteOffset, entries[i].value.byteOffset + entries[i].value.length));
    body += sw.quote(entries[i].key.substring(5)) + ":" + v;
  }
  sw.respond(200, body + "}}");
  return 0;
}
