import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { Bar, BarChart, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, factorValue, list, num, scorerLabel, type Event, type Heatmap, type MemberProfile, type MemberScore, type MemberScores, type PresenceDays, type RoleDrift } from "../api";
import { Badge, Card, clientColors, Empty, ErrorState, fmtAgo, fmtDuration, fmtTime, PageHeader, Skeleton, Stat, StatusDot } from "../components/ui";
import { EventRow } from "../components/EventRow";
import { HeatmapGrid } from "../components/Heatmap";

export default function MemberDetail() {
  const { guild = "", user = "" } = useParams();
  const base = `/guilds/${guild}`;
  const profile = useQuery({ queryKey: ["member", guild, user], queryFn: () => api<MemberProfile>(`${base}/members/${user}?window=30d`) });
  const timeline = useQuery({ queryKey: ["timeline", guild, user], queryFn: () => api<{ events: Event[] }>(`${base}/events?user=${user}&limit=40&order=desc`) });
  const presence = useQuery({ queryKey: ["a-presence", guild, user], queryFn: () => api<PresenceDays>(`${base}/analytics/presence?user=${user}`), retry: false });
  const heat = useQuery({ queryKey: ["heat", guild, user], queryFn: () => api<Heatmap>(`${base}/analytics/heatmap?user=${user}`), retry: false });
  const roles = useQuery({ queryKey: ["roles", guild, user], queryFn: () => api<RoleDrift>(`${base}/analytics/roles?user=${user}`), retry: false });
  const scores = useQuery({ queryKey: ["mscores", guild, user], queryFn: () => api<MemberScores>(`${base}/members/${user}/scores`), retry: false });
  const m = profile.data;
  const days = list(presence.data?.days);
  const scorerRows = list(scores.data?.scorers);
  const roleEvents = list(roles.data?.timeline);
  const events = list(timeline.data?.events);
  const pres = m?.stats?.presence ?? {};
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm muted"><Link to={`${base}/members`} className="hover:underline">Members</Link> / {m?.name ?? user}</nav>
      {profile.error ? (
        <ErrorState error={profile.error} what="Member" onRetry={() => profile.refetch()} />
      ) : !m ? (
        <Skeleton rows={4} />
      ) : (
        <>
          <PageHeader
            title={m.nick || m.name || m.username || m.user_id}
            subtitle={
              <span className="flex flex-wrap items-center gap-2">
                <StatusDot status={m.status} /> {m.status ?? "offline"} · {m.user_id} · account {num(m.account_age_days) ?? "?"} days old
                {m.bot && <Badge tone="blue">bot</Badge>}
                {m.banned && <Badge tone="red">banned</Badge>}
                {m.left_at && <Badge>left {fmtTime(m.left_at)}</Badge>}
              </span>
            }
          />
          <div className="grid grid-cols-2 gap-4 lg:grid-cols-4">
            <Stat label="Messages (30 d)" value={num(m.stats?.messages) ?? 0} />
            <Stat label="Joined" value={m.joined_at ? new Date(m.joined_at).toLocaleDateString() : "—"} />
            <Stat label="Last seen" value={m.status === "online" ? "now" : fmtAgo(m.last_seen)} />
            <Stat label="Roles" value={m.roles?.length ?? 0} />
          </div>
          <div className="mt-6 grid gap-6 lg:grid-cols-2">
            <Card title="Online time by client (30 days)">
              <ul className="space-y-3">
                {(["desktop", "mobile", "web"] as const).map((c) => {
                  const sec = pres[c]?.seconds ?? 0;
                  const total = Math.max(1, ...(["desktop", "mobile", "web"] as const).map((k) => pres[k]?.seconds ?? 0));
                  return (
                    <li key={c}>
                      <div className="mb-1 flex justify-between text-sm"><span className="capitalize">{c}</span><span className="tabular-nums muted">{fmtDuration(sec)}</span></div>
                      <div className="h-2 rounded-full bg-slate-100 dark:bg-slate-800"><div className="h-2 rounded-full" style={{ width: `${(100 * sec) / total}%`, background: clientColors[c] }} /></div>
                    </li>
                  );
                })}
              </ul>
              {days.some((d) => d.online_seconds > 0) && (
                <div className="mt-5 h-48" role="img" aria-label="Online hours per day by client">
                  <ResponsiveContainer>
                    <BarChart data={days.map((d) => ({ date: String(d.date ?? "").slice(5), desktop: (d.by_client?.desktop ?? 0) / 3600, mobile: (d.by_client?.mobile ?? 0) / 3600, web: (d.by_client?.web ?? 0) / 3600 }))}>
                      <XAxis dataKey="date" tick={{ fontSize: 11, fill: "#64748b" }} />
                      <YAxis tick={{ fontSize: 11, fill: "#64748b" }} unit="h" />
                      <Tooltip formatter={(v: number) => `${v.toFixed(1)} h`} />
                      <Legend />
                      {(["desktop", "mobile", "web"] as const).map((c) => <Bar key={c} dataKey={c} stackId="a" fill={clientColors[c]} />)}
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )}
              {presence.error && <p className="mt-3 text-xs muted">Daily presence analytics not available yet.</p>}
            </Card>
            <Card title="Scores">
              {scores.isLoading && <Skeleton />}
              {scores.error && <ErrorState error={scores.error} what="Scores" />}
              {scores.data && scorerRows.length === 0 && <Empty>No scorer has scored this member yet.</Empty>}
              <div className="space-y-6" data-testid="member-scores">
                {scorerRows.map((s) => <ScoreBlock key={s.scorer} s={s} />)}
              </div>
            </Card>
            <Card title="Personal heatmap">
              {heat.isLoading && <Skeleton />}
              {heat.error && <ErrorState error={heat.error} what="The heatmap" />}
              {heat.data && <HeatmapGrid data={heat.data} />}
            </Card>
            <Card title="Role changes">
              {roles.isLoading && <Skeleton />}
              {roles.error && <ErrorState error={roles.error} what="Role drift" />}
              {roles.data && roleEvents.length === 0 && <Empty>No role changed in this window.</Empty>}
              <ul className="divide-y divide-slate-100 text-sm dark:divide-slate-800">
                {roleEvents.slice(0, 20).map((r, i) => (
                  <li key={i} className="flex justify-between py-1.5"><span><Badge tone={r.change === "gained" ? "green" : "red"}>{r.change}</Badge> <span className="font-mono text-xs">{r.role_id}</span></span><span className="muted">{fmtTime(r.at)}</span></li>
                ))}
              </ul>
            </Card>
          </div>
          <Card title="Timeline" className="mt-6">
            {timeline.isLoading && <Skeleton rows={6} />}
            {timeline.error && <ErrorState error={timeline.error} what="Timeline" />}
            {timeline.data && events.length === 0 && <Empty>No events yet.</Empty>}
            <ul className="divide-y divide-slate-100 dark:divide-slate-800">{events.map((e) => <EventRow key={e.id} e={e} name="" />)}</ul>
          </Card>
        </>
      )}
    </>
  );
}

// ScoreBlock is one scorer's verdict: the score, why, each factor's share
// and the trend over the window.
export function ScoreBlock({ s }: { s: MemberScore }) {
  const score = num(s.score) ?? 0;
  const factors = list(s.factors).filter((f) => f && typeof f.name === "string");
  const maxC = Math.max(1, ...factors.map((f) => Math.abs(num(f.contribution) ?? 0)));
  const history = list(s.history).filter((p) => num(p.score) !== undefined);
  return (
    <div data-testid={`score-${s.scorer}`}>
      <div className="flex items-baseline justify-between gap-2">
        <h3 className="font-medium">{scorerLabel(s.scorer)}</h3>
        <span className="text-xl font-semibold tabular-nums">{score.toFixed(1)}<span className="text-sm font-normal muted"> / 100</span></span>
      </div>
      {s.explanation && <p className="text-sm muted">{s.explanation}</p>}
      {factors.length > 0 && (
        <ul className="mt-2 space-y-1 text-sm" aria-label={`${scorerLabel(s.scorer)} factors`}>
          {factors.map((f) => {
            const c = num(f.contribution) ?? 0;
            const v = factorValue(f.value);
            return (
              <li key={f.name} className="grid grid-cols-[1fr_6rem_3.5rem] items-center gap-2">
                <span className="truncate">{f.name.replace(/_/g, " ")}{v && <span className="muted"> ({v})</span>}</span>
                <span className="h-1.5 rounded-full bg-slate-100 dark:bg-slate-800" aria-hidden>
                  <span className="block h-1.5 rounded-full" style={{ width: `${(100 * Math.abs(c)) / maxC}%`, background: c >= 0 ? "#f43f5e" : "#10b981" }} />
                </span>
                <span className={`text-right tabular-nums ${c > 0 ? "text-rose-600 dark:text-rose-400" : c < 0 ? "text-emerald-600" : "muted"}`}>{c > 0 ? "+" : ""}{c.toFixed(1)}</span>
              </li>
            );
          })}
        </ul>
      )}
      {history.length > 1 ? (
        <div className="mt-2 h-24" role="img" aria-label={`${scorerLabel(s.scorer)} score trend`}>
          <ResponsiveContainer><LineChart data={history}><XAxis dataKey="at" hide /><YAxis hide domain={[0, 100]} /><Tooltip labelFormatter={(l) => fmtTime(String(l))} formatter={(v: number) => v.toFixed(1)} /><Line dataKey="score" stroke="#d946ef" dot={false} strokeWidth={2} isAnimationActive={false} /></LineChart></ResponsiveContainer>
        </div>
      ) : (
        <p className="mt-2 text-xs muted">{history.length === 1 ? `Trend: one run so far (${fmtTime(history[0].at)})` : "No history yet"}{s.computed_at ? ` · computed ${fmtAgo(s.computed_at)}` : ""}</p>
      )}
    </div>
  );
}
