import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, type Heatmap, type RoleDrift, type ScorePage } from "../api";
import { Card, Empty, ErrorState, PageHeader, Skeleton, Stat } from "../components/ui";
import { HeatmapGrid } from "../components/Heatmap";

const metrics = ["messages", "presence", "typing", "voice"];

export default function Analytics() {
  const { guild = "" } = useParams();
  const base = `/guilds/${guild}`;
  const [metric, setMetric] = useState("messages");
  const [scorer, setScorer] = useState("");
  const heat = useQuery({ queryKey: ["heat", guild, "", metric], queryFn: () => api<Heatmap>(`${base}/analytics/heatmap?metric=${metric}`), retry: false });
  const roles = useQuery({ queryKey: ["roles", guild, ""], queryFn: () => api<RoleDrift>(`${base}/analytics/roles`), retry: false });
  const board = useQuery({ queryKey: ["scores", guild, scorer], queryFn: () => api<ScorePage>(`${base}/scores?limit=10${scorer ? `&scorer=${scorer}` : ""}`), retry: false });
  const drift = [
    ...(roles.data?.gained ?? []).map((r) => ({ role: r.name || r.role_id, gained: r.count, lost: 0 })),
    ...(roles.data?.lost ?? []).map((r) => ({ role: r.name || r.role_id, gained: 0, lost: -r.count })),
  ].slice(0, 12);
  return (
    <>
      <PageHeader title="Analytics" subtitle="When your community is active, how roles drift, and who stands out." />
      <div className="grid gap-6 xl:grid-cols-2">
        <Card
          title="Guild heatmap"
          actions={
            <label className="flex items-center gap-2 text-sm">
              <span className="muted">Metric</span>
              <select className="input w-auto py-1" value={metric} onChange={(e) => setMetric(e.target.value)}>{metrics.map((m) => <option key={m}>{m}</option>)}</select>
            </label>
          }
        >
          {heat.isLoading && <Skeleton rows={7} />}
          {heat.error && <ErrorState error={heat.error} what="The heatmap" />}
          {heat.data && <HeatmapGrid data={heat.data} />}
        </Card>
        <Card title="Role drift">
          {roles.isLoading && <Skeleton rows={5} />}
          {roles.error && <ErrorState error={roles.error} what="Role drift" />}
          {roles.data && (
            <>
              <div className="mb-4 grid grid-cols-2 gap-3">
                <Stat label="Churn rate" value={`${(roles.data.churn_rate * 100).toFixed(1)} %`} />
                <Stat label="Members changed" value={roles.data.members_changed} />
              </div>
              {drift.length === 0 ? <Empty>No role changed in this window.</Empty> : (
                <div className="h-56" role="img" aria-label="Roles gained and lost">
                  <ResponsiveContainer>
                    <BarChart data={drift} layout="vertical" margin={{ left: 24 }}>
                      <CartesianGrid strokeDasharray="3 3" horizontal={false} />
                      <XAxis type="number" tick={{ fontSize: 11, fill: "#64748b" }} />
                      <YAxis type="category" dataKey="role" tick={{ fontSize: 11, fill: "#64748b" }} width={90} />
                      <Tooltip />
                      <Bar dataKey="gained" fill="#10b981" stackId="a" />
                      <Bar dataKey="lost" fill="#f43f5e" stackId="a" />
                    </BarChart>
                  </ResponsiveContainer>
                </div>
              )}
            </>
          )}
        </Card>
        <Card
          title={`Leaderboard${board.data ? ` — ${board.data.scorer}` : ""}`}
          className="xl:col-span-2"
          actions={
            <label className="flex items-center gap-2 text-sm">
              <span className="muted">Scorer</span>
              <select className="input w-auto py-1" value={scorer} onChange={(e) => setScorer(e.target.value)}>
                <option value="">Default</option>
                {["ghost", "lurker", "suspicion"].map((s) => <option key={s}>{s}</option>)}
              </select>
            </label>
          }
        >
          {board.isLoading && <Skeleton rows={5} />}
          {board.error && <ErrorState error={board.error} what="Scores" />}
          {board.data && board.data.items.length === 0 && <Empty>No scores computed yet.</Empty>}
          {board.data && board.data.items.length > 0 && (
            <ol className="divide-y divide-slate-100 dark:divide-slate-800">
              {board.data.items.map((s, i) => (
                <li key={s.user_id} className="flex items-center gap-4 py-2.5">
                  <span className="w-6 text-right font-semibold tabular-nums muted">{i + 1}</span>
                  <Link to={`${base}/members/${s.user_id}`} className="min-w-0 flex-1 truncate font-medium hover:underline">{s.name || s.user_id}</Link>
                  <span className="hidden min-w-0 flex-[2] truncate text-sm muted md:block">{s.explanation}</span>
                  <span className="w-16 text-right font-semibold tabular-nums">{s.score.toFixed(2)}</span>
                </li>
              ))}
            </ol>
          )}
        </Card>
      </div>
    </>
  );
}
