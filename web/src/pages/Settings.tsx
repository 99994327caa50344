import { useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, num, retentionKinds, trackingKinds, type GuildAccess, type GuildSettings, type Retention, type SettingsPatch, type Tracking } from "../api";
import { Card, ErrorState, fmtAgo, fmtTime, PageHeader, Skeleton } from "../components/ui";

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

const trackingHelp: Record<(typeof trackingKinds)[number], string> = {
  presence: "Status, clients and online sessions",
  messages: "Message metadata: when, where, edits and deletes (never content)",
  typing: "Typing indicators",
  voice: "Voice channel joins and leaves",
  members: "Joins, leaves, nickname and role changes, bans",
};
const retentionHelp: Record<(typeof retentionKinds)[number], string> = {
  events_days: "Raw event log, role and membership history",
  presence_days: "Presence sessions",
  messages_days: "Message metadata and typing",
  scores_days: "Score history",
  plugin_data_days: "Plugin data about a member",
  aggregates_days: "Hourly activity totals",
};
const label = (k: string) => k.replace(/_days$/, "").replace(/_/g, " ");

// settingsForm is the editable part of the settings document, with every
// field present whatever the server left out.
export function settingsForm(g: GuildSettings): Required<SettingsPatch> & { tracking: Tracking; retention: Retention } {
  const tracking = Object.fromEntries(trackingKinds.map((k) => [k, g.tracking?.[k] === true])) as Tracking;
  const retention = Object.fromEntries(retentionKinds.map((k) => [k, num(g.retention?.[k]) ?? 0])) as Retention;
  return { timezone: g.timezone || "UTC", tracking, retention, delete_on_leave: g.delete_on_leave === true };
}

export function Privacy({ guild }: { guild: string }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ["settings", guild], queryFn: () => api<GuildSettings>(`/guilds/${guild}/settings`), retry: false });
  const [s, setS] = useState<ReturnType<typeof settingsForm> | null>(null);
  const [dirty, setDirty] = useState(false);
  useEffect(() => {
    setS(q.data ? settingsForm(q.data) : null);
    setDirty(false);
  }, [q.data]);
  const edit = (v: ReturnType<typeof settingsForm>) => {
    setS(v);
    setDirty(true);
    save.reset();
  };
  const save = useMutation({
    mutationFn: (v: SettingsPatch) => api<GuildSettings>(`/guilds/${guild}/settings`, { method: "PUT", json: v }),
    onSuccess: (saved) => qc.setQueryData(["settings", guild], saved),
  });
  const d = q.data;
  return (
    <Card title="Tracking and retention">
      {q.isLoading && <Skeleton rows={5} />}
      {q.error && <ErrorState error={q.error} what="Privacy settings" onRetry={() => q.refetch()} />}
      {d && s && (
        <form onSubmit={(e) => { e.preventDefault(); save.mutate(s); }} className="space-y-5" aria-label="Privacy settings">
          {!d.configured && <p className="rounded-md bg-amber-50 p-3 text-sm text-amber-800 dark:bg-amber-900/30 dark:text-amber-200">Not configured yet: this guild collects nothing but guild and channel metadata until you save.</p>}
          {d.removal_due_at && <p role="alert" className="rounded-md bg-rose-50 p-3 text-sm text-rose-800 dark:bg-rose-900/30 dark:text-rose-200">This guild's data is scheduled for removal on {fmtTime(d.removal_due_at)}.</p>}
          <fieldset>
            <legend className="label">Collect</legend>
            <div className="divide-y divide-slate-100 dark:divide-slate-800">
              {trackingKinds.map((k) => (
                <label key={k} className="flex items-center justify-between gap-4 py-2 text-sm">
                  <span><span className="font-medium capitalize">{k}</span><span className="block text-xs muted">{trackingHelp[k]}</span></span>
                  <input type="checkbox" role="switch" aria-label={`Track ${k}`} className="h-4 w-4" checked={s.tracking[k]} onChange={(e) => edit({ ...s, tracking: { ...s.tracking, [k]: e.target.checked } })} />
                </label>
              ))}
            </div>
          </fieldset>
          <fieldset>
            <legend className="label">Keep for (days, 0 keeps until deleted)</legend>
            <div className="grid grid-cols-2 gap-3 sm:grid-cols-3">
              {retentionKinds.map((k) => (
                <div key={k}>
                  <label className="text-xs font-medium capitalize" htmlFor={`ret-${k}`} title={retentionHelp[k]}>{label(k)}</label>
                  <input id={`ret-${k}`} type="number" min={0} max={3650} step={1} required className="input" value={s.retention[k]} onChange={(e) => edit({ ...s, retention: { ...s.retention, [k]: e.target.value === "" ? 0 : Math.trunc(Number(e.target.value)) } })} />
                </div>
              ))}
            </div>
          </fieldset>
          <div>
            <label className="label" htmlFor="tz">Time zone (heatmaps and daily totals)</label>
            <input id="tz" className="input" list="tz-list" value={s.timezone} onChange={(e) => edit({ ...s, timezone: e.target.value })} placeholder="Europe/Berlin" required />
            <datalist id="tz-list">{timezones().map((z) => <option key={z} value={z} />)}</datalist>
          </div>
          <label className="flex items-center justify-between gap-4 text-sm">
            <span><span className="font-medium">Delete on leave</span><span className="block text-xs muted">Erase a member's data when they leave the guild</span></span>
            <input type="checkbox" role="switch" aria-label="Delete on leave" className="h-4 w-4" checked={s.delete_on_leave} onChange={(e) => edit({ ...s, delete_on_leave: e.target.checked })} />
          </label>
          {save.error && <p role="alert" className="rounded-md bg-rose-50 p-3 text-sm text-rose-800 dark:bg-rose-950/50 dark:text-rose-200">Not saved: {save.error.message}</p>}
          <div className="flex items-center gap-3">
            <button className="btn-primary" disabled={save.isPending || !dirty}>{save.isPending ? "Saving…" : "Save"}</button>
            {save.isSuccess && !dirty && <span role="status" className="text-sm text-emerald-600">Settings saved.</span>}
            {d.updated_at && <span className="text-xs muted">Last changed {fmtAgo(d.updated_at)}{d.updated_by ? ` by ${d.updated_by}` : ""}</span>}
          </div>
        </form>
      )}
    </Card>
  );
}

function timezones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.("timeZone") ?? ["UTC"];
  } catch {
    return ["UTC"];
  }
}

function Access({ guild }: { guild: string }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ["access", guild], queryFn: () => api<GuildAccess>(`/guilds/${guild}/access`) });
  const [memberAccess, setMemberAccess] = useState(false);
  const [roles, setRoles] = useState("");
  useEffect(() => {
    if (q.data) {
      setMemberAccess(q.data.member_access);
      setRoles((q.data.moderator_roles ?? []).join(", "));
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
