import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, defaultScorer, list, num, scorerLabel, type Member, type ScorePage, type ScorerList } from "../api";
import { Badge, Empty, ErrorState, fmtAgo, PageHeader, Skeleton, StatusDot } from "../components/ui";

const sorts = [
  ["last_seen", "Last seen"],
  ["messages", "Messages"],
  ["name", "Name"],
  ["joined", "Joined"],
  ["first_seen", "First seen"],
  ["last_message", "Last message"],
] as const;

export default function Members() {
  const { guild = "" } = useParams();
  const [q, setQ] = useState("");
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState("");
  const [sort, setSort] = useState("last_seen");
  const [order, setOrder] = useState("desc");
  const [includeLeft, setIncludeLeft] = useState(false);
  const [scorerChoice, setScorerChoice] = useState("");
  const [cursors, setCursors] = useState<string[]>([""]);
  const cursor = cursors[cursors.length - 1];
  const params = new URLSearchParams({ limit: "25", sort, order });
  if (search) params.set("q", search);
  if (status) params.set("status", status);
  if (includeLeft) params.set("include_left", "true");
  if (cursor) params.set("cursor", cursor);
  const members = useQuery({
    queryKey: ["members", guild, params.toString()],
    queryFn: () => api<{ members: Member[]; next_cursor?: string }>(`/guilds/${guild}/members?${params}`),
    placeholderData: keepPreviousData,
  });
  // Scores: the guild's scorers first, then the chosen one's ranking.
  const scorers = useQuery({
    queryKey: ["scorers", guild],
    queryFn: () => api<ScorerList>(`/guilds/${guild}/scores`),
    retry: false,
  });
  const scorer = scorerChoice || defaultScorer(scorers.data);
  const scores = useQuery({
    queryKey: ["scores", guild, scorer, 500],
    queryFn: () => api<ScorePage>(`/guilds/${guild}/scores?scorer=${encodeURIComponent(scorer)}&limit=500`),
    enabled: !!scorer,
    retry: false,
  });
  const scoreOf = new Map(list(scores.data?.items).map((s) => [s.user_id, s]));
  const hasScores = !!scorer && !scores.error;
  const rows = list(members.data?.members);
  const reset = () => setCursors([""]);
  return (
    <>
      <PageHeader title="Members" subtitle="Search, sort and filter everyone the host has seen." />
      <form
        className="card mb-4 flex flex-wrap items-end gap-3 p-4"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q.trim());
          reset();
        }}
        role="search"
      >
        <div className="min-w-[14rem] flex-1">
          <label className="label" htmlFor="q">Search</label>
          <input id="q" className="input" placeholder="Name or user ID" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <div>
          <label className="label" htmlFor="status">Status</label>
          <select id="status" className="input" value={status} onChange={(e) => { setStatus(e.target.value); reset(); }}>
            <option value="">Anyone</option>
            <option value="online">Online</option>
            <option value="offline">Offline</option>
          </select>
        </div>
        <div>
          <label className="label" htmlFor="sort">Sort by</label>
          <select id="sort" className="input" value={sort} onChange={(e) => { setSort(e.target.value); reset(); }}>
            {sorts.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
          </select>
        </div>
        <div>
          <label className="label" htmlFor="order">Order</label>
          <select id="order" className="input" value={order} onChange={(e) => { setOrder(e.target.value); reset(); }}>
            <option value="desc">Descending</option>
            <option value="asc">Ascending</option>
          </select>
        </div>
        {list(scorers.data?.scorers).length > 0 && (
          <div>
            <label className="label" htmlFor="scorer">Score</label>
            <select id="scorer" className="input" value={scorer} onChange={(e) => setScorerChoice(e.target.value)}>
              {list(scorers.data?.scorers).map((s) => <option key={s.scorer} value={s.scorer}>{scorerLabel(s.scorer)}{s.active ? "" : " (inactive)"}</option>)}
            </select>
          </div>
        )}
        <label className="flex items-center gap-2 pb-2 text-sm">
          <input type="checkbox" className="h-4 w-4 rounded" checked={includeLeft} onChange={(e) => { setIncludeLeft(e.target.checked); reset(); }} />
          Include members who left
        </label>
        <button className="btn-primary">Search</button>
      </form>
      <div className="card overflow-hidden">
        {members.isLoading && <div className="p-5"><Skeleton rows={8} /></div>}
        {members.error && <div className="p-5"><ErrorState error={members.error} what="Members" onRetry={() => members.refetch()} /></div>}
        {members.data && rows.length === 0 && <Empty>No member matches.</Empty>}
        {rows.length > 0 && (
          <div className="overflow-x-auto">
            <table className="min-w-full divide-y divide-slate-200 dark:divide-slate-800">
              <caption className="sr-only">Members</caption>
              <thead className="bg-slate-50 dark:bg-slate-900/60">
                <tr>
                  <th scope="col" className="th">Member</th>
                  <th scope="col" className="th">Clients</th>
                  <th scope="col" className="th text-right">Messages</th>
                  <th scope="col" className="th">Last seen</th>
                  <th scope="col" className="th">Joined</th>
                  {hasScores && <th scope="col" className="th">{scorerLabel(scorer)} score</th>}
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100 dark:divide-slate-800">
                {rows.map((m) => (
                  <tr key={m.user_id} className="hover:bg-slate-50 dark:hover:bg-slate-800/40">
                    <td className="td">
                      <span className="flex flex-wrap items-center gap-2">
                        <Link to={`/guilds/${guild}/members/${m.user_id}`} className="flex items-center gap-2 font-medium text-brand-700 hover:underline dark:text-brand-400">
                          <StatusDot status={m.status} />
                          {m.nick || m.name || m.username || m.user_id}
                        </Link>
                        {m.bot && <Badge tone="blue">bot</Badge>}
                        {m.left_at && <Badge>left</Badge>}
                        {m.banned && <Badge tone="red">banned</Badge>}
                      </span>
                    </td>
                    <td className="td">
                      <span className="flex gap-1">
                        {(["desktop", "mobile", "web"] as const).filter((c) => m.client_status?.[c] && m.client_status[c] !== "offline").map((c) => <Badge key={c} tone="green">{c}</Badge>)}
                      </span>
                    </td>
                    <td className="td text-right tabular-nums">{num(m.message_count) ?? 0}</td>
                    <td className="td whitespace-nowrap muted">{m.status === "online" ? "now" : fmtAgo(m.last_seen)}</td>
                    <td className="td whitespace-nowrap muted">{m.joined_at ? new Date(m.joined_at).toLocaleDateString() : "—"}</td>
                    {hasScores && <td className="td"><ScoreCell score={num(scoreOf.get(m.user_id)?.score)} why={scoreOf.get(m.user_id)?.explanation} loading={scores.isLoading} scorer={scorer} /></td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div className="flex items-center justify-between border-t border-slate-200 px-4 py-3 text-sm dark:border-slate-800">
          <span className="muted">
            Page {cursors.length}
            {scorers.isSuccess && !scorer && " · no scorer runs in this guild"}
            {scores.error ? " · scores not available" : scores.data?.computed_at ? ` · scores from ${fmtAgo(scores.data.computed_at)}` : ""}
          </span>
          <div className="flex gap-2">
            <button className="btn-secondary" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))}>Previous</button>
            <button className="btn-secondary" disabled={!members.data?.next_cursor} onClick={() => setCursors((c) => [...c, members.data!.next_cursor!])}>Next</button>
          </div>
        </div>
      </div>
    </>
  );
}

// ScoreCell shows a 0–100 score as a number and a bar; members the scorer
// has not ranked show a dash.
export function ScoreCell({ score, why, loading, scorer }: { score?: number; why?: string; loading?: boolean; scorer: string }) {
  if (score === undefined) return loading ? <span className="muted">…</span> : <span className="muted" title={`Not scored by ${scorerLabel(scorer)}`}>—</span>;
  const pct = Math.max(0, Math.min(100, score));
  const color = pct >= 66 ? "#f43f5e" : pct >= 33 ? "#f59e0b" : "#10b981";
  return (
    <span className="flex items-center gap-2" title={why}>
      <span className="w-10 text-right font-medium tabular-nums">{score.toFixed(1)}</span>
      <span className="h-1.5 w-16 rounded-full bg-slate-100 dark:bg-slate-800" aria-hidden>
        <span className="block h-1.5 rounded-full" style={{ width: `${pct}%`, background: color }} />
      </span>
    </span>
  );
}
