import { useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type GuildAccess, type GuildSettings } from "../api";
import { Card, ErrorState, PageHeader, Skeleton } from "../components/ui";

export default function Settings() {
  const { guild = "" } = useParams();
  return (
    <>
      <PageHeader title="Guild settings" subtitle="Privacy, retention and who may see what." />
      <div className="grid gap-6 lg:grid-cols-2">
        <Privacy guild={guild} />
        <Access guild={guild} />
      </div>
    </>
  );
}

function Privacy({ guild }: { guild: string }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ["settings", guild], queryFn: () => api<GuildSettings>(`/guilds/${guild}/settings`), retry: false });
  const [s, setS] = useState<GuildSettings | null>(null);
  useEffect(() => setS(q.data ?? null), [q.data]);
  const save = useMutation({ mutationFn: (v: GuildSettings) => api<GuildSettings>(`/guilds/${guild}/settings`, { method: "PUT", json: v }), onSuccess: () => qc.invalidateQueries({ queryKey: ["settings", guild] }) });
  return (
    <Card title="Tracking and retention">
      {q.isLoading && <Skeleton rows={5} />}
      {q.error && <ErrorState error={q.error} what="Privacy settings" />}
      {s && (
        <form onSubmit={(e) => { e.preventDefault(); save.mutate(s); }} className="space-y-4">
          <fieldset>
            <legend className="label">Track (opt-in per kind)</legend>
            {(["presence", "messages", "typing", "voice"] as const).map((k) => (
              <label key={k} className="flex items-center gap-2 py-1 text-sm capitalize">
                <input type="checkbox" className="h-4 w-4" checked={s.tracking[k]} onChange={(e) => setS({ ...s, tracking: { ...s.tracking, [k]: e.target.checked } })} />
                {k}
              </label>
            ))}
          </fieldset>
          <div>
            <label className="label" htmlFor="ret">Keep events for (days)</label>
            <input id="ret" type="number" min={1} className="input" value={s.retention.events_days ?? ""} onChange={(e) => setS({ ...s, retention: { ...s.retention, events_days: Number(e.target.value) } })} />
          </div>
          <div>
            <label className="label" htmlFor="tz">Time zone</label>
            <input id="tz" className="input" value={s.timezone} onChange={(e) => setS({ ...s, timezone: e.target.value })} placeholder="Europe/Berlin" />
          </div>
          {save.error && <ErrorState error={save.error} what="The change" />}
          <button className="btn-primary" disabled={save.isPending}>{save.isSuccess ? "Saved" : "Save"}</button>
        </form>
      )}
    </Card>
  );
}

function Access({ guild }: { guild: string }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ["access", guild], queryFn: () => api<GuildAccess>(`/guilds/${guild}/access`) });
  const [memberAccess, setMemberAccess] = useState(false);
  const [roles, setRoles] = useState("");
  useEffect(() => {
    if (q.data) {
      setMemberAccess(q.data.member_access);
      setRoles(q.data.moderator_roles.join(", "));
    }
  }, [q.data]);
  const save = useMutation({
    mutationFn: () => api(`/guilds/${guild}/access`, { method: "PUT", json: { member_access: memberAccess, moderator_roles: roles.split(",").map((r) => r.trim()).filter(Boolean) } }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["access", guild] }),
  });
  return (
    <Card title="Dashboard access">
      {q.isLoading && <Skeleton rows={3} />}
      {q.error && <ErrorState error={q.error} what="Access settings" onRetry={() => q.refetch()} />}
      {q.data && (
        <form onSubmit={(e) => { e.preventDefault(); save.mutate(); }} className="space-y-4">
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" className="h-4 w-4" checked={memberAccess} onChange={(e) => setMemberAccess(e.target.checked)} />
            Every guild member who logs in with Discord may view the overview (viewer)
          </label>
          <div>
            <label className="label" htmlFor="modroles">Discord roles that make someone a moderator here</label>
            <input id="modroles" className="input" value={roles} onChange={(e) => setRoles(e.target.value)} placeholder="Role IDs, comma-separated" />
          </div>
          {save.error && <ErrorState error={save.error} what="The change" />}
          <button className="btn-primary" disabled={save.isPending}>{save.isSuccess ? "Saved" : "Save"}</button>
        </form>
      )}
    </Card>
  );
}
