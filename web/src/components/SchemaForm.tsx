// A form generated from a plugin's config JSON Schema: objects of strings,
// numbers, integers, booleans, enums and string arrays. Anything else is
// edited as JSON.
import { useState, type FormEvent } from "react";
import type { JSONSchema } from "../api";

type Props = { schema: JSONSchema; value: Record<string, unknown>; onSubmit: (v: Record<string, unknown>) => void; busy?: boolean };

const typeOf = (s: JSONSchema) => (Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type) ?? "string";

export function SchemaForm({ schema, value, onSubmit, busy }: Props) {
  const props = schema.properties ?? {};
  const init: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(props)) init[k] = value[k] ?? s.default ?? (typeOf(s) === "boolean" ? false : "");
  const [v, setV] = useState(init);
  const [err, setErr] = useState("");
  const set = (k: string, x: unknown) => setV((o) => ({ ...o, [k]: x }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const out: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(props)) {
      const x = v[k];
      const t = typeOf(s);
      if (x === "" || x === undefined) {
        if (schema.required?.includes(k)) return setErr(`${s.title ?? k} is required`);
        continue;
      }
      if (t === "number" || t === "integer") {
        const n = Number(x);
        if (Number.isNaN(n) || (t === "integer" && !Number.isInteger(n))) return setErr(`${s.title ?? k} must be ${t === "integer" ? "a whole number" : "a number"}`);
        if (s.minimum !== undefined && n < s.minimum) return setErr(`${s.title ?? k} must be at least ${s.minimum}`);
        if (s.maximum !== undefined && n > s.maximum) return setErr(`${s.title ?? k} must be at most ${s.maximum}`);
        out[k] = n;
      } else if (t === "array") {
        out[k] = String(x).split(",").map((y) => y.trim()).filter(Boolean);
      } else if (t === "object") {
        try {
          out[k] = typeof x === "string" ? JSON.parse(x) : x;
        } catch {
          return setErr(`${s.title ?? k} must be JSON`);
        }
      } else out[k] = x;
    }
    setErr("");
    onSubmit(out);
  };
  if (Object.keys(props).length === 0) return <p className="text-sm muted">This plugin has no settings.</p>;
  return (
    <form onSubmit={submit} className="space-y-4" aria-label="Plugin configuration">
      {Object.entries(props).map(([k, s]) => {
        const t = typeOf(s);
        const id = `cfg-${k}`;
        const label = s.title ?? k;
        const req = schema.required?.includes(k);
        return (
          <div key={k}>
            {t === "boolean" ? (
              <label className="flex items-center gap-2 text-sm font-medium" htmlFor={id}>
                <input id={id} type="checkbox" className="h-4 w-4" checked={!!v[k]} onChange={(e) => set(k, e.target.checked)} />
                {label}
              </label>
            ) : (
              <>
                <label className="label" htmlFor={id}>{label}{req && <span aria-hidden className="text-rose-500"> *</span>}</label>
                {s.enum ? (
                  <select id={id} className="input" value={String(v[k] ?? "")} onChange={(e) => set(k, e.target.value)} required={req}>
                    <option value="" disabled>Choose…</option>
                    {s.enum.map((o) => <option key={String(o)} value={String(o)}>{String(o)}</option>)}
                  </select>
                ) : t === "object" ? (
                  <textarea id={id} className="input font-mono" rows={3} value={typeof v[k] === "string" ? (v[k] as string) : JSON.stringify(v[k] ?? {})} onChange={(e) => set(k, e.target.value)} />
                ) : (
                  <input
                    id={id}
                    className="input"
                    type={t === "number" || t === "integer" ? "number" : s.format === "uri" ? "url" : "text"}
                    value={Array.isArray(v[k]) ? (v[k] as string[]).join(", ") : String(v[k] ?? "")}
                    min={s.minimum}
                    max={s.maximum}
                    required={req}
                    onChange={(e) => set(k, e.target.value)}
                    aria-describedby={s.description ? `${id}-d` : undefined}
                  />
                )}
              </>
            )}
            {s.description && <p id={`${id}-d`} className="mt-1 text-xs muted">{s.description}{t === "array" ? " (comma-separated)" : ""}</p>}
          </div>
        );
      })}
      {err && <p role="alert" className="text-sm text-rose-600">{err}</p>}
      <button className="btn-primary" disabled={busy}>{busy ? "Saving…" : "Save settings"}</button>
    </form>
  );
}
