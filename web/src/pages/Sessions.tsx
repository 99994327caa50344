import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Session } from "../api";
import { Badge, Card, Empty, ErrorState, fmtAgo, fmtTime, PageHeader, Skeleton } from "../components/ui";

export default function Sessions() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ["sessions"], queryFn: () => api<{ sessions: Session[]; current: string }>("/auth/sessions") });
  const revoke = useMutation({ mutationFn: (id: string) => api(`/auth/sessions/${id}`, { method: "DELETE" }), onSuccess: () => qc.invalidateQueries({ queryKey: ["sessions"] }) });
  return (
    <>
      <PageHeader title="Sessions" subtitle="Where you are logged in. Revoke anything you do not recognise." />
      <Card>
        {q.isLoading && <Skeleton rows={4} />}
        {q.error && <ErrorState error={q.error} what="Sessions" onRetry={() => q.refetch()} />}
        {q.data && q.data.sessions.length === 0 && <Empty>No session (you are using a token).</Empty>}
        <ul className="divide-y divide-slate-100 dark:divide-slate-800">
          {q.data?.sessions.map((s) => (
            <li key={s.id} className="flex flex-wrap items-center gap-4 py-3">
              <div className="min-w-0 flex-1">
                <p className="font-medium">
                  {s.user_agent ? s.user_agent.replace(/\(.*?\)/g, "").slice(0, 60) : "Unknown client"}{" "}
                  {s.id === q.data.current && <Badge tone="green">this browser</Badge>} {s.revoked_at && <Badge tone="red">revoked</Badge>}
                </p>
                <p className="text-xs muted">{s.method} · {s.ip || "unknown address"} · started {fmtTime(s.created_at)} · last used {fmtAgo(s.last_used_at)} · expires {fmtTime(s.expires_at)}</p>
              </div>
              {!s.revoked_at && s.id !== q.data.current && <button className="btn-danger py-1 text-xs" onClick={() => revoke.mutate(s.id)}>Revoke</button>}
            </li>
          ))}
        </ul>
      </Card>
    </>
  );
}
