import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, defaultScorer, heatmapMetrics, list, num, scorerLabel, type Heatmap, type PresenceDays, type RoleDrift, type ScorePage, type ScorerList } from "../api";
import { Badge, Card, clientColors, Empty, ErrorState, fmtAgo, fmtTime, PageHeader, Skeleton, Stat } from "../components/ui";
import { HeatmapGrid } from "../components/Heatmap";

export default function Analytics() {
  const { guild = "" } = useParams();
  const base = `/guilds/${guild}`;
  const [metric, setMetric] = useState<string>("messages");
  const [scorerChoice, setScorerChoice] = useState("");
  const heat = useQuery({ queryKey: ["heat", guild, "", metric], queryFn: () => api<Heatmap>(`${base}/analytics/heatmap?metric=${metric}`), retry: false });
  const roles = useQuery({ queryKey: ["roles", guild, ""], queryFn: () => api<RoleDrift>(`${base}/analytics/roles?limit=20`), retry: false });
  const presence = useQuery({ queryKey: ["a-presence", guild, ""], queryFn: () => api<PresenceDays>(`${base}/analytics/presence`), retry: false });
  const scorers = useQuery({ queryKey: ["scorers", guild], queryFn: () => api<ScorerList>(`${base}/scores`), retry: false });
  const scorer = scorerChoice || defaultScorer(scorers.data);
  const board = useQuery({
    queryKey: ["scores", guild, scorer, 10],
    queryFn: () => api<ScorePage>(`${base}/scores?limit=10&scorer=${encodeURIComponent(scorer)}`),
    enabled: !!scorer,
    retry: false,
  });
  const items = list(board.data?.items);
  const timeline = list(roles.data?.timeline);
  // One bar per role: gained to the right, lost to the left.
  const byRole = new Map<string, { role: string; gained: number; lost: number }>();
  const row = (id: string, name?: string) => {
    let r = byRole.get(id);
    if (!r) byRole.set(id, (r = { role: name && name !== id ? name : `…${id.slice(-6)}`, gained: 0, lost: 0 }));
    return r;
  };
  for (const g of list(roles.data?.gained)) row(g.role_id, g.name).gained += num(g.count) ?? 0;
  for (const l of list(roles.data?.lost)) row(l.role_id, l.name).lost -= num(l.count) ?? 0;
  const drift = [...byRole.values()].sort((a, b) => b.gained - b.lost - (a.gained - a.lost)).slice(0, 12);
  const days = list(presence.data?.days);
  const onlineDays = days.map((d) => ({ date: String(d.date ?? "").slice(5), desktop: (d.by_client?.desktop ?? 0) / 3600, mobile: (d.by_client?.mobile ?? 0) / 3600, web: (d.by_client?.web ?? 0) / 3600 }));
  return (
    <>
      <PageHeader title="Analytics" subtitle="When your community is active, how roles drift, and who stands out." />
      <div className="grid gap-6 xl:grid-cols-2">
        <Card
          title="Guild heatmap"
          actions={
            <label className="flex items-center gap-2 text-sm">
              <span className="muted">Metric</span>
              <select aria-label="Heatmap metric" className="input w-auto py-1" value={metric} onChange={(e) => setMetric(e.target.value)}>{heatmapMetrics.map((m) => <option key={m}>{m}</option>)}</select>
            </label>
          }
        >
          {heat.isLoading && <Skeleton rows={7} />}
          {heat.error && <ErrorState error={heat.error} what="The heatmap" onRetry={() => heat.refetch()} />}
          {heat.data && <HeatmapGrid data={heat.data} />}
          {heat.data?.from && <p className="mt-1 text-xs muted">{fmtTime(heat.data.from)} – {fmtTime(heat.data.to)}</p>}
        </Card>
        <Card title="Role drift">
          {roles.isLoading && <Skeleton rows={5} />}
          {roles.error && <ErrorState error={roles.error} what="Role drift" onRetry={() => roles.refetch()} />}
          {roles.data && (
            <>
              <div className="mb-4 grid grid-cols-2 gap-3">
                <Stat label="Churn rate" value={`${((num(roles.data.churn_rate) ?? 0) * 100).toFixed(1)} %`} hint="members whose roles changed" />
                <Stat label="Members changed" value={num(roles.data.members_changed) ?? 0} />
              </div>
              {drift.length === 0 ? <Empty>No role changed in this window.</Empty> : (
                <div className="h-56" role="img" aria-label="Roles gained and lost" data-testid="role-drift">
                  <ResponsiveContainer>
                    <BarChart data={drift} layout="vertical" margin={{ left: 8 }} stackOffset="sign">
                      <CartesianGrid strokeDasharray="3 3" horizontal={false} />
                      <XAxis type="number" tick={{ fontSize: 11, fill: "#64748b" }} allowDecimals={false} />
                      <YAxis type="category" dataKey="role" tick={{ fontSize: 11, fill: "#64748b" }} width={90} />
                      <Tooltip formatter={(v: number) => Math.abs(v)} />
                      <Legend />
                      <Bar dataKey="gained" fill="#10b981" stackId="a" isAnimationActive={false} />
                      <Bar dataKey="lost" fill="#f43f5e" stackId="a" isAnimationActive={false} />
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )}
              {timeline.length > 0 && (
                <ul className="mt-4 divide-y divide-slate-100 text-sm dark:divide-slate-800" aria-label="Recent role changes">
                  {timeline.slice(0, 6).map((r, i) => (
                    <li key={i} className="flex items-center justify-between gap-2 py-1.5">
                      <span className="flex min-w-0 items-center gap-2">
                        <Badge tone={r.change === "gained" ? "green" : "red"}>{r.change}</Badge>
                        <Link to={`${base}/members/${r.user_id}`} className="truncate hover:underline">{r.user_id}</Link>
                        <span className="truncate font-mono text-xs muted">{r.role_id}</span>
                      </span>
                      <span className="whitespace-nowrap muted">{fmtAgo(r.at)}</span>
                    </li>
                  ))}
                </ul>
              )}
            </>
          )}
        </Card>
        <Card title="Online hours per day by client" className="xl:col-span-2">
          {presence.isLoading && <Skeleton rows={4} />}
          {presence.error && <ErrorState error={presence.error} what="Presence" onRetry={() => presence.refetch()} />}
          {presence.data && (onlineDays.some((d) => d.desktop + d.mobile + d.web > 0) ? (
            <div className="h-56" role="img" aria-label="Online hours per day by client">
              <ResponsiveContainer>
                <BarChart data={onlineDays}>
                  <XAxis dataKey="date" tick={{ fontSize: 11, fill: "#64748b" }} />
                  <YAxis tick={{ fontSize: 11, fill: "#64748b" }} unit="h" />
                  <Tooltip formatter={(v: number) => `${v.toFixed(1)} h`} />
                  <Legend />
                  {(["desktop", "mobile", "web"] as const).map((c) => <Bar key={c} dataKey={c} stackId="a" fill={clientColors[c]} isAnimationActive={false} />)}
                </BarChart>
              </ResponsiveContainer>
            </div>
          ) : <Empty>No presence recorded in this window.</Empty>)}
        </Card>
        <Card
          title={`Leaderboard${scorer ? ` — ${scorerLabel(scorer)}` : ""}`}
          className="xl:col-span-2"
          actions={
            list(scorers.data?.scorers).length > 0 && (
              <label className="flex items-center gap-2 text-sm">
                <span className="muted">Scorer</span>
                <select aria-label="Scorer" className="input w-auto py-1" value={scorer} onChange={(e) => setScorerChoice(e.target.value)}>
                  {list(scorers.data?.scorers).map((s) => <option key={s.scorer} value={s.scorer}>{scorerLabel(s.scorer)}</option>)}
                </select>
              </label>
            )
          }
        >
          {(scorers.isLoading || board.isLoading) && <Skeleton rows={5} />}
          {scorers.error && <ErrorState error={scorers.error} what="Scores" />}
          {scorers.isSuccess && !scorer && <Empty>No scorer plugin runs in this guild. Enable one on the Plugins page.</Empty>}
          {board.error && <ErrorState error={board.error} what="Scores" onRetry={() => board.refetch()} />}
          {board.data && items.length === 0 && <Empty>No scores computed yet.</Empty>}
          {items.length > 0 && (
            <>
              <ol className="divide-y divide-slate-100 dark:divide-slate-800" data-testid="leaderboard">
                {items.map((s, i) => (
                  <li key={s.user_id} className="flex items-center gap-4 py-2.5">
                    <span className="w-6 text-right font-semibold tabular-nums muted">{i + 1}</span>
                    <Link to={`${base}/members/${s.user_id}`} className="min-w-0 flex-1 truncate font-medium hover:underline">{s.name || s.user_id}</Link>
                    <span className="hidden min-w-0 flex-[2] truncate text-sm muted md:block">{s.explanation}</span>
                    <span className="w-16 text-right font-semibold tabular-nums">{(num(s.score) ?? 0).toFixed(1)}</span>
                  </li>
                ))}
              </ol>
              {board.data?.computed_at && <p className="mt-2 text-xs muted">Computed {fmtAgo(board.data.computed_at)}</p>}
            </>
          )}
        </Card>
      </div>
    </>
  );
}
