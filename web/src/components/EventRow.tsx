import type { Event } from "../api";

const labels: Record<string, [string, string]> = {
  "presence.update": ["Presence", "bg-emerald-500"],
  "message.create": ["Message", "bg-brand-500"],
  "message.update": ["Edit", "bg-sky-500"],
  "message.delete": ["Delete", "bg-slate-500"],
  "typing.start": ["Typing", "bg-slate-400"],
  "member.join": ["Join", "bg-teal-500"],
  "member.leave": ["Leave", "bg-orange-500"],
  "member.update": ["Roles", "bg-violet-500"],
  "ban.add": ["Ban", "bg-rose-600"],
  "ban.remove": ["Unban", "bg-rose-300"],
  "voice.state": ["Voice", "bg-cyan-500"],
  "score.update": ["Score", "bg-fuchsia-500"],
  "plugin.event": ["Plugin", "bg-amber-500"],
};

export function describe(e: Event): string {
  const d = (e.data ?? {}) as Record<string, any>;
  switch (e.kind) {
    case "presence.update": {
      const cs = d.client_status ?? {};
      const on = Object.entries(cs).filter(([, v]) => v && v !== "offline").map(([k]) => k);
      return `${d.status ?? "?"}${on.length ? " on " + on.join(" + ") : ""}`;
    }
    case "message.create":
      return `${d.length ?? 0} characters${d.attachments ? `, ${d.attachments} attachments` : ""}`;
    case "member.update": {
      const a = (d.roles_added ?? []).length, r = (d.roles_removed ?? []).length;
      return `${a ? `+${a} role${a > 1 ? "s" : ""}` : ""}${a && r ? ", " : ""}${r ? `−${r} role${r > 1 ? "s" : ""}` : ""}` || "profile changed";
    }
    case "score.update":
      return `${d.scorer}: ${Number(d.score).toFixed(2)}${d.explanation ? ` — ${d.explanation}` : ""}`;
    case "plugin.event":
      return `${d.plugin_id}: ${d.type}`;
    case "ban.add":
      return d.reason ? `reason: ${d.reason}` : "banned";
    default:
      return "";
  }
}

export function EventRow({ e, name }: { e: Event; name?: string }) {
  const [label, color] = labels[e.kind] ?? [e.kind, "bg-slate-400"];
  return (
    <li className="flex items-center gap-3 py-2 text-sm">
      <span className={`h-2 w-2 shrink-0 rounded-full ${color}`} aria-hidden />
      <span className="w-20 shrink-0 font-medium">{label}</span>
      <span className="min-w-0 flex-1 truncate">
        {name ?? e.user_id ?? ""} <span className="muted">{describe(e)}</span>
      </span>
      <time className="shrink-0 text-xs tabular-nums muted" dateTime={e.at}>
        {new Date(e.at).toLocaleTimeString()}
      </time>
    </li>
  );
}
