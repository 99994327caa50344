import { useRef, useState, type FormEvent } from "react";
import { useOutletContext, useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Me, type Plugin, type PluginStatus } from "../api";
import { Badge, Card, Empty, ErrorState, fmtTime, Modal, PageHeader, Skeleton } from "../components/ui";
import { PermissionReview } from "../components/PermissionReview";
import { SchemaForm } from "../components/SchemaForm";
import { roleIn } from "../components/Shell";

const stateTone: Record<string, string> = { running: "green", enabled: "green", quarantined: "red", missing_permissions: "yellow", disabled: "gray" };

export default function Plugins() {
  const { guild = "" } = useParams();
  const { me } = useOutletContext<{ me: Me }>();
  const qc = useQueryClient();
  const catalogue = useQuery({ queryKey: ["plugins"], queryFn: () => api<{ plugins: Plugin[] }>("/plugins") });
  const statuses = useQuery({ queryKey: ["gplugins", guild], queryFn: () => api<{ plugins: PluginStatus[] }>(`/guilds/${guild}/plugins`) });
  const [review, setReview] = useState<Plugin | null>(null);
  const [configure, setConfigure] = useState<Plugin | null>(null);
  const [notice, setNotice] = useState("");
  const refresh = () => qc.invalidateQueries({ queryKey: ["gplugins", guild] });
  const act = useMutation({
    mutationFn: ({ id, what, body }: { id: string; what: string; body?: unknown }) =>
      what === "config"
        ? api<PluginStatus>(`/guilds/${guild}/plugins/${id}/config`, { method: "PUT", json: body })
        : what === "revoke"
          ? api<PluginStatus>(`/guilds/${guild}/plugins/${id}/grants`, { method: "DELETE" })
          : api<PluginStatus>(`/guilds/${guild}/plugins/${id}/${what}`, { method: "POST", json: body }),
    onSuccess: (_, v) => {
      setNotice({ enable: "Plugin enabled.", disable: "Plugin disabled.", grants: "Permissions granted.", config: "Settings saved.", revoke: "Permissions revoked." }[v.what] ?? "Done.");
      setReview(null);
      setConfigure(null);
      refresh();
    },
  });
  const statusOf = new Map(statuses.data?.plugins.map((s) => [s.plugin_id, s]));
  const isInstanceAdmin = roleIn(me) === "instance_admin" || me.kind === "admin_token";
  return (
    <>
      <PageHeader title="Plugins" subtitle="Extend Spywatcher with sandboxed plugins. Each one only gets the permissions you grant in this guild." />
      {isInstanceAdmin && <Install onInstalled={(id) => { setNotice(`Installed ${id}.`); qc.invalidateQueries({ queryKey: ["plugins"] }); }} />}
      {notice && <div role="status" className="mb-4 rounded-lg bg-emerald-50 p-3 text-sm text-emerald-800 dark:bg-emerald-950/40 dark:text-emerald-200">{notice}</div>}
      {act.error && <div className="mb-4"><ErrorState error={act.error} what="The change" /></div>}
      {(catalogue.isLoading || statuses.isLoading) && <Skeleton rows={5} />}
      {catalogue.error && <ErrorState error={catalogue.error} what="Plugins" onRetry={() => catalogue.refetch()} />}
      {catalogue.data && catalogue.data.plugins.length === 0 && <Card><Empty>No plugin is installed on this host yet.</Empty></Card>}
      <ul className="grid gap-4 lg:grid-cols-2">
        {catalogue.data?.plugins.map((p) => {
          const s = statusOf.get(p.id);
          const state = s?.state ?? "disabled";
          const missing = s ? (s.missing_permissions ?? []) : (p.permissions?.filter((x) => !x.optional).map((x) => x.name) ?? []);
          return (
            <li key={p.id} className="card flex flex-col p-5" data-testid={`plugin-${p.id}`}>
              <div className="flex items-start justify-between gap-3">
                <div className="min-w-0">
                  <h2 className="font-semibold">{p.name} <span className="text-sm font-normal muted">v{p.version}</span></h2>
                  <p className="text-xs muted">{p.id}{p.authors?.length ? ` · by ${p.authors.join(", ")}` : ""} · {p.runtime ?? "wasm"}</p>
                </div>
                <Badge tone={stateTone[state] ?? "gray"}><span data-testid="plugin-state">{state.replace("_", " ")}</span></Badge>
              </div>
              {p.description && <p className="mt-2 text-sm">{p.description}</p>}
              <div className="mt-3 flex flex-wrap gap-1">
                {p.hooks?.map((h) => <Badge key={h} tone="blue">{h}</Badge>)}
              </div>
              {s?.quarantine_reason && <p className="mt-3 rounded bg-rose-50 p-2 text-sm text-rose-800 dark:bg-rose-950/40 dark:text-rose-200">Quarantined: {s.quarantine_reason}</p>}
              {s?.last_error && <p className="mt-2 text-xs text-rose-700 dark:text-rose-300">Last error {fmtTime(s.last_error_at)}: {s.last_error}</p>}
              {p.load_error && <p className="mt-2 text-xs text-rose-700">Cannot load: {p.load_error}</p>}
              {missing.length > 0 && <p className="mt-3 text-sm text-amber-700 dark:text-amber-300">Needs your approval: {missing.join(", ")}</p>}
              {s?.grants && s.grants.length > 0 && <p className="mt-2 text-xs muted">Granted: {s.grants.map((g) => g.permission).join(", ")}</p>}
              {s?.enabled && p.routes && p.routes.length > 0 && (
                <div className="mt-3 text-sm">
                  <p className="font-medium">Pages</p>
                  <ul className="list-inside list-disc">
                    {p.routes.filter((r) => (r.method ?? "GET") === "GET").map((r) => (
                      <li key={r.path}><a className="text-brand-700 hover:underline dark:text-brand-400" href={`/api/v1/guilds/${guild}/plugins/${p.id}/http${r.path}`} target="_blank" rel="noreferrer">{r.description || r.path}</a></li>
                    ))}
                  </ul>
                </div>
              )}
              <div className="mt-auto flex flex-wrap gap-2 pt-4">
                {(p.permissions?.length ?? 0) > 0 && <button className="btn-secondary" onClick={() => setReview(p)}>Review permissions</button>}
                {p.config_schema && <button className="btn-secondary" onClick={() => setConfigure(p)}>Settings</button>}
                {s?.enabled ? (
                  <button className="btn-secondary" onClick={() => act.mutate({ id: p.id, what: "disable" })}>Disable</button>
                ) : (
                  <button className="btn-primary" onClick={() => act.mutate({ id: p.id, what: "enable" })}>Enable in this guild</button>
                )}
                {s?.grants && s.grants.length > 0 && <button className="btn-secondary text-rose-700" onClick={() => act.mutate({ id: p.id, what: "revoke" })}>Revoke all</button>}
              </div>
            </li>
          );
        })}
      </ul>
      {review && (
        <Modal title={`Permissions for ${review.name}`} onClose={() => setReview(null)}>
          <PermissionReview
            permissions={review.permissions ?? []}
            granted={statusOf.get(review.id)?.grants?.map((g) => g.permission) ?? []}
            busy={act.isPending}
            onGrant={(names) => act.mutate({ id: review.id, what: "grants", body: { permissions: names.map((name) => ({ name, hosts: review.permissions?.find((p) => p.name === name)?.hosts })) } })}
          />
        </Modal>
      )}
      {configure && configure.config_schema && (
        <Modal title={`${configure.name} settings`} onClose={() => setConfigure(null)}>
          <SchemaForm schema={configure.config_schema} value={statusOf.get(configure.id)?.config ?? {}} busy={act.isPending} onSubmit={(v) => act.mutate({ id: configure.id, what: "config", body: v })} />
        </Modal>
      )}
    </>
  );
}

function Install({ onInstalled }: { onInstalled: (id: string) => void }) {
  const manifest = useRef<HTMLInputElement>(null);
  const artifact = useRef<HTMLInputElement>(null);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const fd = new FormData();
    fd.set("manifest", manifest.current!.files![0]);
    fd.set("artifact", artifact.current!.files![0]);
    setBusy(true);
    setErr(null);
    try {
      const r = await api<{ manifest: { id: string } }>("/plugins", { method: "POST", body: fd });
      onInstalled(r.manifest.id);
      (e.target as HTMLFormElement).reset();
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Install a plugin" className="mb-6">
      <form onSubmit={submit} className="flex flex-wrap items-end gap-4">
        <div>
          <label className="label" htmlFor="manifest">Manifest (plugin.json)</label>
          <input id="manifest" ref={manifest} type="file" accept=".json,.toml" required className="text-sm" />
        </div>
        <div>
          <label className="label" htmlFor="artifact">Module (.wasm)</label>
          <input id="artifact" ref={artifact} type="file" accept=".wasm" required className="text-sm" />
        </div>
        <button className="btn-primary" disabled={busy}>{busy ? "Installing…" : "Install"}</button>
      </form>
      {err != null && <div className="mt-3"><ErrorState error={err} what="The install" /></div>}
    </Card>
  );
}
