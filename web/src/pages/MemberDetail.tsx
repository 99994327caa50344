import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, type Event, type Heatmap, type MemberProfile, type MemberScores, type PresenceDays, type RoleDrift } from "../api";
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
                <StatusDot status={m.status} /> {m.status ?? "offline"} · {m.user_id} · account {m.account_age_days} days old
                {m.bot && <Badge tone="blue">bot</Badge>}
                {m.banned && <Badge tone="red">banned</Badge>}
                {m.left_at && <Badge>left {fmtTime(m.left_at)}</Badge>}
              </span>
            }
          />
          <div className="grid grid-cols-2 gap-4 lg:grid-cols-4">
            <Stat label="Messages (30 d)" value={m.stats.messages} />
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
              {presence.data && presence.data.days.length > 0 && (
                <div className="mt-5 h-48" role="img" aria-label="Online hours per day by client">
                  <ResponsiveContainer>
                    <BarChart data={presence.data.days.map((d) => ({ date: d.date.slice(5), desktop: d.by_client.desktop / 3600, mobile: d.by_client.mobile / 3600, web: d.by_client.web / 3600 }))}>
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
              {scores.data && scores.data.scorers.length === 0 && <Empty>No scorer has scored this member yet.</Empty>}
              <div className="space-y-5">
                {scores.data?.scorers.map((s) => (
                  <div key={s.scorer}>
                    <div className="flex items-baseline justify-between"><h3 className="font-medium capitalize">{s.scorer}</h3><span className="text-xl font-semibold tabular-nums">{s.score.toFixed(2)}</span></div>
                    {s.explanation && <p className="text-sm muted">{s.explanation}</p>}
                    <ul className="mt-2 space-y-1 text-sm">
                      {s.factors?.map((f) => (
                        <li key={f.name} className="flex justify-between gap-2"><span>{f.name}{f.value !== undefined && <span className="muted"> ({f.value})</span>}</span><span className={`tabular-nums ${f.contribution >= 0 ? "text-rose-600 dark:text-rose-400" : "text-emerald-600"}`}>{f.contribution >= 0 ? "+" : ""}{f.contribution.toFixed(2)}</span></li>
                      ))}
                    </ul>
                    {s.history && s.history.length > 1 && (
                      <div className="mt-2 h-24" role="img" aria-label={`${s.scorer} score trend`}>
                        <ResponsiveContainer><LineChart data={s.history}><XAxis dataKey="at" hide /><YAxis hide domain={[0, "auto"]} /><Tooltip labelFormatter={(l) => fmtTime(String(l))} /><Line dataKey="score" stroke="#d946ef" dot={false} strokeWidth={2} /></LineChart></ResponsiveContainer>
                      </div>
                    )}
                  </div>
                ))}
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
              {roles.data && roles.data.timeline.length === 0 && <Empty>No role changed in this window.</Empty>}
              <ul className="divide-y divide-slate-100 text-sm dark:divide-slate-800">
                {roles.data?.timeline.slice(0, 20).map((r, i) => (
                  <li key={i} className="flex justify-between py-1.5"><span><Badge tone={r.change === "added" ? "green" : "red"}>{r.change}</Badge> {r.role_id}</span><span className="muted">{fmtTime(r.at)}</span></li>
                ))}
              </ul>
            </Card>
          </div>
          <Card title="Timeline" className="mt-6">
            {timeline.isLoading && <Skeleton rows={6} />}
            {timeline.error && <ErrorState error={timeline.error} what="Timeline" />}
            {timeline.data && timeline.data.events.length === 0 && <Empty>No events yet.</Empty>}
            <ul className="divide-y divide-slate-100 dark:divide-slate-800">{timeline.data?.events.map((e) => <EventRow key={e.id} e={e} name="" />)}</ul>
          </Card>
        </>
      )}
    </>
  );
}
