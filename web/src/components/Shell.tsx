import { useEffect, useState, type ReactNode } from "react";
import { NavLink, Outlet, useNavigate, useParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Guild, type Me } from "../api";
import { Spinner } from "./ui";

export function useTheme() {
  const [dark, setDark] = useState(() => {
    const s = localStorage.getItem("theme");
    return s ? s === "dark" : window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
  });
  useEffect(() => {
    document.documentElement.classList.toggle("dark", dark);
    localStorage.setItem("theme", dark ? "dark" : "light");
  }, [dark]);
  return { dark, toggle: () => setDark((d) => !d) };
}

export function ThemeToggle() {
  const { dark, toggle } = useTheme();
  return (
    <button className="btn-secondary px-2.5" onClick={toggle} aria-label={dark ? "Switch to light mode" : "Switch to dark mode"} title="Toggle dark mode">
      {dark ? "☀" : "☾"}
    </button>
  );
}

export function Logo() {
  return (
    <span className="flex items-center gap-2 font-semibold tracking-tight">
      <svg viewBox="0 0 32 32" className="h-7 w-7" aria-hidden>
        <rect width="32" height="32" rx="8" fill="#4f46e5" />
        <circle cx="16" cy="16" r="7" fill="none" stroke="#fff" strokeWidth="3" />
        <circle cx="16" cy="16" r="2.5" fill="#fff" />
      </svg>
      Spywatcher
    </span>
  );
}

export function useMe() {
  return useQuery({ queryKey: ["me"], queryFn: () => api<Me>("/auth/me"), retry: false, staleTime: 60_000 });
}

// roleIn tells the caller's role in a guild ("*" roles hold everywhere).
export function roleIn(me: Me | undefined, guild?: string): string {
  if (!me) return "";
  return (guild && me.roles[guild]) || me.roles["*"] || "";
}

const rank: Record<string, number> = { viewer: 1, moderator: 2, admin: 3, owner: 4, instance_admin: 5 };
export const atLeast = (role: string, min: string) => (rank[role] ?? 0) >= rank[min];

function NavItem({ to, children, end }: { to: string; children: ReactNode; end?: boolean }) {
  return (
    <NavLink
      to={to}
      end={end}
      className={({ isActive }) =>
        `flex items-center gap-2 rounded-lg px-3 py-2 text-sm font-medium transition ${
          isActive ? "bg-brand-50 text-brand-700 dark:bg-brand-700/20 dark:text-brand-100" : "text-slate-600 hover:bg-slate-100 dark:text-slate-300 dark:hover:bg-slate-800"
        }`
      }
    >
      {children}
    </NavLink>
  );
}

export function Shell() {
  const params = useParams();
  // Pages outside a guild (API keys, sessions) keep the last guild's navigation.
  const guild = params.guild ?? localStorage.getItem("guild") ?? undefined;
  useEffect(() => {
    if (params.guild) localStorage.setItem("guild", params.guild);
  }, [params.guild]);
  const me = useMe();
  const nav = useNavigate();
  const qc = useQueryClient();
  const [open, setOpen] = useState(false);
  const guilds = useQuery({ queryKey: ["guilds"], queryFn: () => api<{ guilds: Guild[] }>("/guilds"), enabled: !!me.data });
  useEffect(() => {
    if (me.error) nav("/login", { replace: true });
  }, [me.error, nav]);
  if (me.isLoading) return <Spinner label="Signing you in" />;
  if (!me.data) return null;
  const role = roleIn(me.data, guild);
  const g = guilds.data?.guilds.find((x) => x.id === guild);
  const logout = async () => {
    await api("/auth/logout", { method: "POST" }).catch(() => undefined);
    qc.clear();
    nav("/login");
  };
  const base = `/guilds/${guild}`;
  const sidebar = (
    <nav aria-label="Main" className="flex flex-col gap-1">
      {guild && (
        <>
          <p className="px-3 pb-1 pt-2 text-xs font-semibold uppercase tracking-wide muted">Watch</p>
          <NavItem to={base} end>Overview</NavItem>
          {atLeast(role, "moderator") && <NavItem to={`${base}/members`}>Members</NavItem>}
          <NavItem to={`${base}/analytics`}>Analytics</NavItem>
          {atLeast(role, "admin") && (
            <>
              <p className="px-3 pb-1 pt-4 text-xs font-semibold uppercase tracking-wide muted">Manage</p>
              <NavItem to={`${base}/plugins`}>Plugins</NavItem>
              <NavItem to={`${base}/audit`}>Audit log</NavItem>
              <NavItem to={`${base}/settings`}>Guild settings</NavItem>
            </>
          )}
        </>
      )}
      <p className="px-3 pb-1 pt-4 text-xs font-semibold uppercase tracking-wide muted">You</p>
      <NavItem to="/account/api-keys">API keys</NavItem>
      <NavItem to="/account/sessions">Sessions</NavItem>
    </nav>
  );
  return (
    <div className="min-h-screen lg:grid lg:grid-cols-[15rem_1fr]">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2">
        Skip to content
      </a>
      <aside className={`${open ? "block" : "hidden"} border-b border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900 lg:block lg:min-h-screen lg:border-b-0 lg:border-r`}>
        <div className="mb-4 hidden lg:block">
          <NavLink to="/guilds" aria-label="Spywatcher home"><Logo /></NavLink>
        </div>
        {sidebar}
      </aside>
      <div className="min-w-0 overflow-x-hidden">
        <header className="sticky top-0 z-30 flex flex-wrap items-center gap-2 sm:gap-3 border-b border-slate-200 bg-white/80 px-4 py-3 backdrop-blur dark:border-slate-800 dark:bg-slate-900/80 sm:px-6">
          <button className="btn-secondary px-2.5 lg:hidden" onClick={() => setOpen((o) => !o)} aria-expanded={open} aria-label="Menu">☰</button>
          <span className="hidden sm:inline lg:hidden"><Logo /></span>
          {guild && (
            <label className="ml-auto flex items-center gap-2 text-sm lg:ml-0">
              <span className="sr-only">Guild</span>
              <select className="input w-auto max-w-[11rem] py-1.5 sm:max-w-xs" value={guild} onChange={(e) => nav(`/guilds/${e.target.value}`)}>
                {(guilds.data?.guilds ?? (g ? [g] : [])).map((x) => (
                  <option key={x.id} value={x.id}>{x.name || x.id}</option>
                ))}
              </select>
            </label>
          )}
          <div className="ml-auto flex items-center gap-2">
            {role && <span className="hidden text-xs muted sm:inline">{role.replace("_", " ")}</span>}
            <span className="hidden text-sm font-medium sm:inline">{me.data.name ?? me.data.subject}</span>
            <ThemeToggle />
            <button className="btn-secondary whitespace-nowrap" onClick={logout}>Log out</button>
          </div>
        </header>
        <main id="main" className="mx-auto max-w-7xl px-4 py-6 sm:px-6">
          <Outlet context={{ me: me.data, role, guild: g }} />
        </main>
      </div>
    </div>
  );
}
