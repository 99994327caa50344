import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type APIKey, type Guild, type Tier } from "../api";
import { Badge, Card, Empty, ErrorState, fmtAgo, fmtTime, Modal, PageHeader, Skeleton } from "../components/ui";

export default function ApiKeys() {
  const qc = useQueryClient();
  const keys = useQuery({ queryKey: ["apikeys"], queryFn: () => api<{ api_keys: APIKey[]; tiers: Record<string, Tier> }>("/auth/apikeys") });
  const guilds = useQuery({ queryKey: ["guilds"], queryFn: () => api<{ guilds: Guild[] }>("/guilds") });
  const [name, setName] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [write, setWrite] = useState(false);
  const [expires, setExpires] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [usage, setUsage] = useState<APIKey | null>(null);
  const create = useMutation({
    mutationFn: () => api<APIKey & { secret: string }>("/auth/apikeys", { method: "POST", json: { name, guilds: chosen, write, ...(expires ? { expires_in: expires } : {}) } }),
    onSuccess: (k) => {
      setSecret(k.secret);
      setName("");
      qc.invalidateQueries({ queryKey: ["apikeys"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/auth/apikeys/${id}`, { method: "DELETE" }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["apikeys"] }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const active = keys.data?.api_keys.filter((k) => !k.revoked_at) ?? [];
  return (
    <>
      <PageHeader title="API keys" subtitle="Keys let scripts and services read (or ingest into) your guilds. A key can never do more than you." />
      <Card title="Create a key" className="mb-6">
        <form onSubmit={submit} className="grid gap-4 md:grid-cols-2">
          <div>
            <label className="label" htmlFor="kname">Name</label>
            <input id="kname" className="input" value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Grafana" required />
          </div>
          <div>
            <label className="label" htmlFor="kexp">Expires after</label>
            <select id="kexp" className="input" value={expires} onChange={(e) => setExpires(e.target.value)}>
              <option value="">Never</option>
              <option value="168h">7 days</option>
              <option value="720h">30 days</option>
              <option value="2160h">90 days</option>
            </select>
          </div>
          <fieldset className="md:col-span-2">
            <legend className="label">Guilds</legend>
            {guilds.isLoading && <Skeleton rows={1} />}
            <div className="flex flex-wrap gap-3">
              {guilds.data?.guilds.map((g) => (
                <label key={g.id} className="flex items-center gap-2 text-sm">
                  <input type="checkbox" className="h-4 w-4" checked={chosen.includes(g.id)} onChange={(e) => setChosen((c) => (e.target.checked ? [...c, g.id] : c.filter((x) => x !== g.id)))} />
                  {g.name || g.id}
                </label>
              ))}
            </div>
          </fieldset>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" className="h-4 w-4" checked={write} onChange={(e) => setWrite(e.target.checked)} />
            Allow changes (ingest events); read-only otherwise
          </label>
          <div className="md:text-right">
            <button className="btn-primary" disabled={create.isPending || chosen.length === 0}>{create.isPending ? "Creating…" : "Create key"}</button>
          </div>
        </form>
        {create.error && <div className="mt-3"><ErrorState error={create.error} what="The key" /></div>}
      </Card>
      <Card title="Your keys">
        {keys.isLoading && <Skeleton rows={4} />}
        {keys.error && <ErrorState error={keys.error} what="API keys" onRetry={() => keys.refetch()} />}
        {keys.data && active.length === 0 && <Empty>No active key.</Empty>}
        {active.length > 0 && (
          <div className="overflow-x-auto">
            <table className="min-w-full">
              <thead><tr><th className="th">Name</th><th className="th">Key</th><th className="th">Access</th><th className="th">Tier</th><th className="th">Last used</th><th className="th">Expires</th><th className="th"><span className="sr-only">Actions</span></th></tr></thead>
              <tbody className="divide-y divide-slate-100 dark:divide-slate-800">
                {active.map((k) => (
                  <tr key={k.id}>
                    <td className="td font-medium">{k.name}</td>
                    <td className="td"><code className="text-xs">{k.prefix}{k.id}_…</code></td>
                    <td className="td">{k.write ? <Badge tone="yellow">read + write</Badge> : <Badge>read-only</Badge>}</td>
                    <td className="td">{k.tier}</td>
                    <td className="td muted">{fmtAgo(k.last_used_at)}</td>
                    <td className="td muted">{k.expires_at ? fmtTime(k.expires_at) : "never"}</td>
                    <td className="td whitespace-nowrap text-right">
                      <button className="btn-secondary py-1 text-xs" onClick={() => setUsage(k)}>Usage</button>{" "}
                      <button className="btn-danger py-1 text-xs" onClick={() => confirm(`Revoke ${k.name}? Anything using it stops working.`) && revoke.mutate(k.id)}>Revoke</button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      {secret && (
        <Modal title="Your new API key" onClose={() => setSecret(null)}>
          <p className="text-sm">Copy it now: it is shown <b>only once</b> and stored only as a hash.</p>
          <div className="mt-3 flex gap-2">
            <input readOnly className="input font-mono" value={secret} aria-label="API key secret" data-testid="api-key-secret" onFocus={(e) => e.target.select()} />
            <button className="btn-secondary" onClick={() => navigator.clipboard?.writeText(secret)}>Copy</button>
          </div>
          <p className="mt-3 text-xs muted">Use it as <code>Authorization: Bearer {secret.slice(0, 8)}…</code></p>
          <button className="btn-primary mt-5" onClick={() => setSecret(null)}>I have saved it</button>
        </Modal>
      )}
      {usage && <Usage k={usage} onClose={() => setUsage(null)} />}
    </>
  );
}

function Usage({ k, onClose }: { k: APIKey; onClose: () => void }) {
  const q = useQuery({ queryKey: ["usage", k.id], queryFn: () => api<{ tier: Tier; days: { day: string; requests: number }[] }>(`/auth/apikeys/${k.id}/usage`) });
  return (
    <Modal title={`Usage of ${k.name}`} onClose={onClose}>
      {q.isLoading && <Skeleton />}
      {q.error && <ErrorState error={q.error} what="Usage" />}
      {q.data && (
        <>
          <p className="text-sm muted">Tier {q.data.tier.name}: {q.data.tier.per_minute}/min, {q.data.tier.per_day}/day</p>
          {q.data.days.length === 0 ? <Empty>Not used yet.</Empty> : (
            <ul className="mt-3 divide-y divide-slate-100 text-sm dark:divide-slate-800">
              {q.data.days.map((d) => <li key={d.day} className="flex justify-between py-1.5"><span>{new Date(d.day).toLocaleDateString()}</span><span className="tabular-nums">{d.requests}</span></li>)}
            </ul>
          )}
        </>
      )}
    </Modal>
  );
}
