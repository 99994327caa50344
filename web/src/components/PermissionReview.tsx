import { useState } from "react";
import type { PluginPermission } from "../api";
import { Badge } from "./ui";

const riskWords: Record<string, [string, string]> = {
  low: ["green", "Low risk: it only reads harmless, aggregate data or uses its own storage."],
  medium: ["yellow", "Medium risk: it can see information about individual members."],
  high: ["red", "High risk: it can read private content or act outside Spywatcher."],
};

export function PermissionReview({ permissions, granted, onGrant, busy }: { permissions: PluginPermission[]; granted: string[]; onGrant: (names: string[]) => void; busy?: boolean }) {
  const [chosen, setChosen] = useState(() => new Set(permissions.filter((p) => !p.optional || granted.includes(p.name)).map((p) => p.name)));
  const toggle = (n: string) => setChosen((s) => { const t = new Set(s); if (t.has(n)) t.delete(n); else t.add(n); return t; });
  return (
    <div>
      <p className="mb-4 text-sm muted">Review what this plugin asks for. It gets nothing you do not grant here, and you can revoke everything later.</p>
      <ul className="space-y-3">
        {permissions.map((p) => {
          const [tone, words] = riskWords[p.risk ?? ""] ?? ["gray", "Unknown risk."];
          const id = `perm-${p.name}`;
          return (
            <li key={p.name} className="rounded-lg border border-slate-200 p-3 dark:border-slate-700">
              <label htmlFor={id} className="flex items-start gap-3">
                <input id={id} type="checkbox" className="mt-1 h-4 w-4" checked={chosen.has(p.name)} disabled={!p.optional} onChange={() => toggle(p.name)} />
                <span className="min-w-0 flex-1">
                  <span className="flex flex-wrap items-center gap-2">
                    <code className="text-sm font-semibold">{p.name}</code>
                    <Badge tone={tone}>{p.risk ?? "unknown"} risk</Badge>
                    {p.optional ? <Badge>optional</Badge> : <Badge tone="blue">required</Badge>}
                    {granted.includes(p.name) && <Badge tone="green">granted</Badge>}
                  </span>
                  {p.grants && <span className="mt-1 block text-sm">{p.grants}</span>}
                  {p.reason && <span className="mt-1 block text-sm muted">Why: {p.reason}</span>}
                  {p.hosts && p.hosts.length > 0 && <span className="mt-1 block text-sm muted">Hosts: {p.hosts.join(", ")}</span>}
                  <span className="mt-1 block text-xs muted">{words}</span>
                </span>
              </label>
            </li>
          );
        })}
      </ul>
      <button className="btn-primary mt-5 w-full" disabled={busy || chosen.size === 0} onClick={() => onGrant([...chosen])}>
        {busy ? "Granting…" : `Grant ${chosen.size} permission${chosen.size === 1 ? "" : "s"}`}
      </button>
    </div>
  );
}
