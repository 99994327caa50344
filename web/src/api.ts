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
export type Factor = { name: string; contribution: number; value?: number };
export type ScoreItem = { user_id: string; name?: string; score: number; factors?: Factor[]; explanation?: string };
export type ScorePage = { scorer: string; computed_at?: string; items: ScoreItem[]; next_cursor?: string };
export type MemberScores = { scorers: { scorer: string; score: number; factors?: Factor[]; explanation?: string; computed_at?: string; history?: { at: string; score: number }[] }[] };
export type Heatmap = { timezone: string; from: string; to: string; metric: string; cells: number[][]; max: number };
export type RoleDrift = { from: string; to: string; gained: { role_id: string; name?: string; count: number }[]; lost: { role_id: string; name?: string; count: number }[]; churn_rate: number; members_changed: number; timeline: { at: string; user_id: string; role_id: string; change: string }[] };
export type PresenceDays = { days: { date: string; online_seconds: number; multi_client_seconds: number; by_client: { desktop: number; mobile: number; web: number } }[] };
export type GuildSettings = { timezone: string; tracking: { presence: boolean; messages: boolean; typing: boolean; voice: boolean }; retention: Record<string, number> };
export type GuildAccess = { guild_id: string; member_access: boolean; moderator_roles: string[]; updated_at?: string };
