import { useMemo, useRef, useState } from "react";
import { useOutletContext, useParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, type ActivityHour, type Member, type Presence } from "../api";
import { atLeast } from "../components/Shell";
import { useLive, type LiveMessage } from "../live";
import { Badge, Card, clientColors, Empty, ErrorState, PageHeader, Skeleton, Stat } from "../components/ui";
import { EventRow } from "../components/EventRow";

const liveTone = { live: "green", connecting: "yellow", reconnecting: "yellow", forbidden: "red" } as const;

export default function Overview() {
  const { guild = "" } = useParams();
  const qc = useQueryClient();
  const { role } = useOutletContext<{ role: string }>();
  // Names for the stream: moderators see members; everyone sees who is online.
  const people = useQuery({
    queryKey: ["names", guild],
    queryFn: () => api<{ members: Member[] }>(`/guilds/${guild}/members?limit=200&sort=last_seen&order=desc`),
    enabled: atLeast(role, "moderator"),
    staleTime: 300_000,
  });
  const presence = useQuery({ queryKey: ["presence", guild], queryFn: () => api<Presence>(`/guilds/${guild}/presence?limit=500`) });
  const since = useMemo(() => new Date(Date.now() - 48 * 3600 * 1000).toISOString(), []);
  const activity = useQuery({
    queryKey: ["activity", guild, since],
    queryFn: () => api<{ hours: ActivityHour[] }>(`/guilds/${guild}/activity?from=${encodeURIComponent(since)}`),
  });
  const [events, setEvents] = useState<LiveMessage[]>([]);
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const refetchAt = useRef(0);
  const live = useLive(
    guild,
    (evs) => {
      if (!pausedRef.current) setEvents((old) => [...evs.slice().reverse(), ...old].slice(0, 60));
      // Presence counts come from the server: refetch at most every 1.5 s.
      if (evs.some((e) => e.kind === "presence.update") && Date.now() - refetchAt.current > 1500) {
        refetchAt.current = Date.now();
        qc.invalidateQueries({ queryKey: ["presence", guild] });
      }
    },
    () => qc.invalidateQueries({ queryKey: ["presence", guild] }),
  );
  // Leading empty hours (before the host started watching) are left out.
  const hours = activity.data?.hours ?? [];
  const firstBusy = hours.findIndex((h) => h.messages + h.presence_updates + h.joins + h.leaves > 0);
  const chart = hours.slice(Math.max(0, firstBusy)).map((h) => ({
    hour: new Date(h.hour).toLocaleTimeString([], { weekday: "short", hour: "2-digit" }),
    messages: h.messages,
    presence: h.presence_updates,
  }));
  const p = presence.data;
  const names = new Map<string, string>();
  for (const m of people.data?.members ?? []) names.set(m.user_id, m.nick || m.name || m.username || m.user_id);
  for (const m of p?.members ?? []) names.set(m.user_id, m.name);
  const nameOf = (e: LiveMessage) => {
    const u = (e.data as { user?: { global_name?: string; username?: string } } | undefined)?.user;
    return (e.user_id && names.get(e.user_id)) || u?.global_name || u?.username || e.user_id || "";
  };
  return (
    <>
      <PageHeader
        title="Overview"
        subtitle="Who is here right now, and what they are doing."
        actions={<Badge tone={liveTone[live.state]}><span data-testid="live-state">{live.state === "live" ? "● Live" : live.state}</span></Badge>}
      />
      {presence.error ? (
        <ErrorState error={presence.error} what="Presence" onRetry={() => presence.refetch()} />
      ) : (
        <div className="grid grid-cols-2 gap-4 lg:grid-cols-5">
          <Stat label="Online now" value={p ? <span data-testid="online-count">{p.online}</span> : "…"} hint={p ? `${p.multi_client} on several clients` : ""} accent="#10b981" />
          {(["desktop", "mobile", "web"] as const).map((c) => (
            <Stat key={c} label={c} value={p ? <span data-testid={`online-${c}`}>{p.by_client?.[c] ?? 0}</span> : "…"} accent={clientColors[c]} />
          ))}
          <Stat label="Idle / DnD" value={p ? `${p.by_status?.idle ?? 0} / ${p.by_status?.dnd ?? 0}` : "…"} accent="#f59e0b" />
        </div>
      )}
      <div className="mt-6 grid gap-6 xl:grid-cols-[1.4fr_1fr]">
        <Card title="Activity, up to the last 48 hours">
          {activity.isLoading && <Skeleton rows={6} />}
          {activity.error && <ErrorState error={activity.error} what="Activity" onRetry={() => activity.refetch()} />}
          {activity.data && chart.length === 0 && <Empty>No activity recorded in this window.</Empty>}
          {chart.length > 0 && (
            <div className="h-72" role="img" aria-label="Messages and presence updates per hour over the last 48 hours">
              <ResponsiveContainer>
                <AreaChart data={chart} margin={{ left: -16, right: 8 }}>
                  <defs>
                    <linearGradient id="gm" x1="0" x2="0" y1="0" y2="1"><stop offset="0" stopColor="#6366f1" stopOpacity={0.5} /><stop offset="1" stopColor="#6366f1" stopOpacity={0} /></linearGradient>
                    <linearGradient id="gp" x1="0" x2="0" y1="0" y2="1"><stop offset="0" stopColor="#10b981" stopOpacity={0.35} /><stop offset="1" stopColor="#10b981" stopOpacity={0} /></linearGradient>
                  </defs>
                  <CartesianGrid strokeDasharray="3 3" stroke="currentColor" className="text-slate-200 dark:text-slate-800" />
                  <XAxis dataKey="hour" tick={{ fontSize: 11, fill: "#64748b" }} minTickGap={40} />
                  <YAxis tick={{ fontSize: 11, fill: "#64748b" }} />
                  <Tooltip contentStyle={{ borderRadius: 8, fontSize: 12 }} />
                  <Area type="monotone" dataKey="presence" name="Presence updates" stroke="#10b981" fill="url(#gp)" strokeWidth={2} />
                  <Area type="monotone" dataKey="messages" name="Messages" stroke="#6366f1" fill="url(#gm)" strokeWidth={2} />
                </AreaChart>
              </ResponsiveContainer>
            </div>
          )}
        </Card>
        <Card
          title={<span>Live events {live.scope === "presence" && <span className="font-normal muted">(presence only for your role)</span>}</span>}
          actions={<button className="btn-secondary py-1 text-xs" onClick={() => setPaused((x) => !x)} aria-pressed={paused}>{paused ? "Resume" : "Pause"}</button>}
        >
          {events.length === 0 ? (
            <Empty>{live.state === "forbidden" ? "You may not watch this guild live." : "Waiting for the next event…"}</Empty>
          ) : (
            <ul aria-live="polite" aria-label="Live events" data-testid="live-events" className="max-h-[19rem] divide-y divide-slate-100 overflow-y-auto dark:divide-slate-800">
              {events.map((e) => <EventRow key={e.id} e={e} name={nameOf(e)} />)}
            </ul>
          )}
        </Card>
      </div>
    </>
  );
}
