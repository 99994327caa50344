// The REST client: same-origin cookies, the CSRF header on changes, one
// refresh attempt when the access token has expired.

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
  get notAvailable() {
    return this.status === 404 && (this.code === "not_found" || this.code === "");
  }
}

export function csrfToken(cookie = document.cookie): string {
  const m = cookie.match(/(?:^|;\s*)sw_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

let refreshing: Promise<boolean> | null = null;

async function refresh(): Promise<boolean> {
  refreshing ??= fetch("/api/v1/auth/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken() },
  })
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => setTimeout(() => (refreshing = null), 0));
  return refreshing;
}

export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}, retry = true): Promise<T> {
  const headers = new Headers(init.headers);
  const method = (init.method ?? "GET").toUpperCase();
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  if (method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", csrfToken());
  const res = await fetch("/api/v1" + path, { ...init, method, headers, body, credentials: "same-origin" });
  if (res.status === 401 && retry && !path.startsWith("/auth/login") && (await refresh())) {
    return api<T>(path, init, false);
  }
  if (!res.ok) {
    let code = "";
    let message = res.statusText;
    try {
      const e = await res.json();
      code = e?.error?.code ?? "";
      message = e?.error?.message ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  if (res.status === 204) return undefined as T;
  return res.json() as Promise<T>;
}

// Types of the API (see /api/v1/openapi.json).
export type ClientStatus = { desktop?: string; mobile?: string; web?: string };
export type Guild = { id: string; name: string; icon?: string; member_count?: number; members: number; online: number; timezone?: string };
export type Member = {
  user_id: string; username?: string; name?: string; nick?: string; bot?: boolean; joined_at?: string; left_at?: string; banned?: boolean;
  first_seen?: string; last_seen?: string; last_message_at?: string; message_count: number; status?: string; client_status?: ClientStatus; roles?: string[];
};
export type MemberProfile = Member & { account_age_days: number; stats: { from: string; to: string; messages: number; presence: Record<string, { seconds: number; by_status?: Record<string, number> }> } };
export type Presence = { online: number; by_status: Record<string, number>; by_client: Record<string, number>; multi_client: number; members: { user_id: string; name: string; status: string; client_status: ClientStatus }[]; truncated: boolean };
export type Event = { id: string; kind: string; guild_id: string; user_id?: string; channel_id?: string; at: string; data?: Record<string, unknown> };
export type ActivityHour = { hour: string; messages: number; edits: number; deletes: number; typing: number; presence_updates: number; voice_updates: number; joins: number; leaves: number };
export type Me = { kind: string; id: string; subject: string; name?: string; account_id?: string; session_id?: string; roles: Record<string, string> };
export type Session = { id: string; method: string; ip?: string; user_agent?: string; created_at: string; last_used_at?: string; expires_at: string; revoked_at?: string };
export type APIKey = { id: string; name: string; prefix: string; guilds: string[]; write: boolean; tier: string; created_at: string; expires_at?: string; last_used_at?: string; revoked_at?: string };
export type Tier = { name: string; per_minute: number; per_day: number };
export type AuditEntry = { id: number; at: string; actor: string; action: string; target: string; guild_id?: string; result: string; ip?: string; detail?: string };
export type PluginPermission = { name: string; reason?: string; optional?: boolean; hosts?: string[]; grants?: string; risk?: string };
export type Plugin = {
  id: string; name: string; version: string; description?: string; authors?: string[]; hooks?: string[]; events?: string[];
  routes?: { method?: string; path: string; description?: string }[]; permissions?: PluginPermission[]; runtime?: string; load_error?: string; config_schema?: JSONSchema;
};
export type PluginStatus = {
  plugin_id: string; guild_id: string; enabled: boolean; running: boolean; state: string; missing_permissions?: string[];
  grants?: { permission: string; hosts?: string[]; granted_by?: string; granted_at?: string }[]; config?: Record<string, unknown>;
  quarantine_reason?: string; last_error?: string; last_error_at?: string;
};
export type JSONSchema = {
  type?: string | string[]; title?: string; description?: string; properties?: Record<string, JSONSchema>; required?: string[];
  enum?: unknown[]; default?: unknown; minimum?: number; maximum?: number; items?: JSONSchema; format?: string;
};
// Scores (GET /guilds/{g}/scores, /members/{u}/scores). A factor's value
// is whatever the scorer reported: a number, a flag, or nothing.
export type Factor = { name: string; contribution: number; value?: number | boolean | string | null };
export type ScoreRun = { run_id: string; scorer: string; version?: string; cause: string; from: string; to: string; started_at: string; finished_at?: string; members: number; error?: string };
// GET /scores without ?scorer= lists the guild's scorers.
export type ScorerStatus = { scorer: string; active: boolean; last_run?: ScoreRun };
export type ScorerList = { scorers: ScorerStatus[] };
export type ScoreItem = { user_id: string; name?: string; score: number; factors?: Factor[] | null; explanation?: string };
// GET /scores?scorer=ID ranks the members, highest first.
export type ScorePage = { scorer: string; computed_at?: string | null; items: ScoreItem[] | null; next_cursor?: string };
export type MemberScore = { scorer: string; user_id?: string; name?: string; score: number; factors?: Factor[] | null; explanation?: string; computed_at?: string; history?: { at: string; score: number }[] | null };
export type MemberScores = { user_id?: string; scorers: MemberScore[] | null };
export const heatmapMetrics = ["messages", "presence", "typing"] as const;
export type Heatmap = { timezone: string; from: string; to: string; metric: string; user_id?: string; cells: number[][] | null; max: number };
export type RoleCount = { role_id: string; name?: string; count: number };
export type RoleEvent = { at: string; user_id: string; role_id: string; change: "gained" | "lost" | string };
export type RoleDrift = { from: string; to: string; user_id?: string; gained: RoleCount[] | null; lost: RoleCount[] | null; churn_rate: number; members_changed: number; timeline: RoleEvent[] | null; next_cursor?: string };
export type PresenceDays = { timezone?: string; from?: string; to?: string; days: { date: string; online_seconds: number; multi_client_seconds: number; by_client?: Partial<Record<"desktop" | "mobile" | "web", number>> | null }[] | null };
// GET/PUT /guilds/{g}/settings (privacy.go). PUT takes any subset.
export const trackingKinds = ["presence", "messages", "typing", "voice", "members"] as const;
export type Tracking = Record<(typeof trackingKinds)[number], boolean>;
export const retentionKinds = ["events_days", "presence_days", "messages_days", "scores_days", "plugin_data_days", "aggregates_days"] as const;
export type Retention = Record<(typeof retentionKinds)[number], number>;
export type GuildSettings = {
  guild_id?: string; configured?: boolean; timezone: string; tracking: Partial<Tracking>; retention: Partial<Retention>; delete_on_leave?: boolean;
  removal_requested_at?: string; removal_due_at?: string; updated_by?: string; updated_at?: string;
};
export type SettingsPatch = { timezone?: string; tracking?: Partial<Tracking>; retention?: Partial<Retention>; delete_on_leave?: boolean };

// list returns v when it is an array, else an empty one: the pages render
// whatever the server sends without crashing on a missing field.
export function list<T>(v: T[] | null | undefined): T[] {
  return Array.isArray(v) ? v : [];
}

// num returns v when it is a finite number, else undefined.
export function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

// defaultScorer picks the scorer a page shows first: an active one that
// has scored members, else any active one, else the first listed.
export function defaultScorer(l: ScorerList | undefined): string {
  const s = list(l?.scorers);
  return (s.find((x) => x.active && (x.last_run?.members ?? 0) > 0) ?? s.find((x) => x.active) ?? s[0])?.scorer ?? "";
}

// scorerLabel turns "ghost-score" into "Ghost".
export function scorerLabel(id: string): string {
  const b = id.replace(/-score$/, "").replace(/[-_]/g, " ");
  return b.charAt(0).toUpperCase() + b.slice(1);
}

// factorValue renders a factor's raw value, or "" when it has none.
export function factorValue(v: Factor["value"]): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(1);
  if (typeof v === "string") return v;
  return "";
}

// heatmapCells returns 7 rows of 24 numbers whatever came back.
export function heatmapCells(h: Heatmap | undefined): number[][] {
  const rows = list(h?.cells);
  return Array.from({ length: 7 }, (_, d) => Array.from({ length: 24 }, (_, hr) => num(list(rows[d])[hr]) ?? 0));
}
export type GuildAccess = { guild_id: string; member_access: boolean; moderator_roles: string[]; updated_at?: string };
