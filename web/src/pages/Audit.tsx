import { useState } from "react";
import { useParams } from "react-router-dom";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, type AuditEntry } from "../api";
import { Badge, Card, Empty, ErrorState, fmtTime, PageHeader, Skeleton } from "../components/ui";

export default function Audit() {
  const { guild = "" } = useParams();
  const [cursors, setCursors] = useState<string[]>([""]);
  const cursor = cursors[cursors.length - 1];
  const q = useQuery({
    queryKey: ["audit", guild, cursor],
    queryFn: () => api<{ entries: AuditEntry[]; next_cursor?: string }>(`/guilds/${guild}/audit?limit=30${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
    placeholderData: keepPreviousData,
  });
  return (
    <>
      <PageHeader title="Audit log" subtitle="Every security-relevant action in this guild: who, what, when, from where." />
      <Card>
        {q.isLoading && <Skeleton rows={8} />}
        {q.error && <ErrorState error={q.error} what="The audit log" onRetry={() => q.refetch()} />}
        {q.data && q.data.entries.length === 0 && <Empty>Nothing recorded yet.</Empty>}
        {q.data && q.data.entries.length > 0 && (
          <div className="overflow-x-auto">
            <table className="min-w-full">
              <thead><tr><th className="th">When</th><th className="th">Who</th><th className="th">Action</th><th className="th">Target</th><th className="th">Result</th><th className="th">Detail</th></tr></thead>
              <tbody className="divide-y divide-slate-100 dark:divide-slate-800">
                {q.data.entries.map((e) => (
                  <tr key={e.id}>
                    <td className="td whitespace-nowrap muted">{fmtTime(e.at)}</td>
                    <td className="td">{e.actor}</td>
                    <td className="td"><code className="text-xs">{e.action}</code></td>
                    <td className="td">{e.target}</td>
                    <td className="td"><Badge tone={e.result === "ok" ? "green" : e.result === "denied" ? "red" : "yellow"}>{e.result}</Badge></td>
                    <td className="td max-w-xs truncate muted" title={e.detail}>{e.detail}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div className="mt-3 flex justify-end gap-2">
          <button className="btn-secondary" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))}>Newer</button>
          <button className="btn-secondary" disabled={!q.data?.next_cursor} onClick={() => setCursors((c) => [...c, q.data!.next_cursor!])}>Older</button>
        </div>
      </Card>
    </>
  );
}
