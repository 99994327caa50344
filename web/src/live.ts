// The live stream: one WebSocket per page, opened with a single-use ticket,
// reconnecting with backoff and resuming after the last event id seen.
import { useEffect, useRef, useState } from "react";
import { api, type Event } from "./api";

export type LiveState = "connecting" | "live" | "reconnecting" | "forbidden";
export type LiveMessage = Event & { type: string; code?: string; message?: string; scope?: string };

const statuses: Record<string, string> = { o: "online", i: "idle", d: "dnd", f: "offline" };

// A frame is a JSON array of messages; a run of presence updates comes as a
// presence batch ["p", guild_id, at0, [dt, id, user_id, "sdmw"], ...] (see
// README, The live stream), expanded here to ordinary presence.update events.
export function decodeFrame(data: string): LiveMessage[] {
  const out: LiveMessage[] = [];
  for (const m of JSON.parse(data) as unknown[]) {
    if (!Array.isArray(m)) {
      out.push(m as LiveMessage);
      continue;
    }
    if (m[0] !== "p") continue; // a compact form this client does not know
    const [, guild, at0] = m as [string, string, number];
    for (const t of m.slice(3) as [number, string, string, string][]) {
      const [dt, id, user, st] = t;
      const s = (i: number) => statuses[st[i]];
      const client_status: Record<string, string> = {};
      (["desktop", "mobile", "web"] as const).forEach((k, i) => {
        if (s(i + 1)) client_status[k] = s(i + 1);
      });
      out.push({ type: "event", kind: "presence.update", guild_id: guild, id, user_id: user, at: new Date(at0 + dt).toISOString(), data: { status: s(0) ?? "", client_status } });
    }
  }
  return out;
}

export function wsURL(path: string, loc: Location = window.location): string {
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + path;
}

export function useLive(guild: string | undefined, onEvents: (evs: LiveMessage[]) => void, onResync?: () => void) {
  const [state, setState] = useState<LiveState>("connecting");
  const [scope, setScope] = useState<string>("");
  const cb = useRef(onEvents);
  cb.current = onEvents;
  const rs = useRef(onResync);
  rs.current = onResync;
  useEffect(() => {
    if (!guild) return;
    let ws: WebSocket | null = null;
    let stopped = false;
    let attempt = 0;
    let last = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      try {
        const t = await api<{ url: string }>("/ws/ticket", { method: "POST" });
        if (stopped) return;
        ws = new WebSocket(wsURL(t.url));
      } catch {
        return retry();
      }
      ws.onopen = () => ws?.send(JSON.stringify({ type: "subscribe", guild_id: guild, since: last || undefined }));
      ws.onmessage = (e) => {
        const msgs = decodeFrame(e.data as string);
        const evs: LiveMessage[] = [];
        for (const m of msgs) {
          if (m.type === "event") {
            evs.push(m);
            if (m.id) last = m.id;
          } else if (m.type === "subscribed") {
            attempt = 0;
            setScope(m.scope ?? "");
            setState("live");
          } else if (m.type === "resync") {
            rs.current?.();
          } else if (m.type === "error" && m.code === "forbidden") {
            setState("forbidden");
          }
        }
        if (evs.length) cb.current(evs);
      };
      ws.onclose = () => {
        if (!stopped) retry();
      };
    };
    const retry = () => {
      setState("reconnecting");
      const wait = Math.min(30000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
      timer = setTimeout(connect, wait);
    };
    setState("connecting");
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      ws?.close(1000, "page closed");
    };
  }, [guild]);
  return { state, scope };
}
