import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api, type Guild } from "../api";
import { Empty, ErrorState, PageHeader, Skeleton } from "../components/ui";

export default function Guilds() {
  const q = useQuery({ queryKey: ["guilds"], queryFn: () => api<{ guilds: Guild[] }>("/guilds") });
  return (
    <>
      <PageHeader title="Your communities" subtitle="Pick a guild to watch." />
      {q.isLoading && <Skeleton rows={4} />}
      {q.error && <ErrorState error={q.error} what="Guilds" onRetry={() => q.refetch()} />}
      {q.data && q.data.guilds.length === 0 && <Empty>No guild you may see yet. Ask an admin for a role, or connect the bot.</Empty>}
      <ul className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
        {q.data?.guilds.map((g) => (
          <li key={g.id}>
            <Link to={`/guilds/${g.id}`} className="card block p-5 transition hover:-translate-y-0.5 hover:shadow-md focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500">
              <div className="flex items-center gap-3">
                <span className="flex h-11 w-11 items-center justify-center rounded-xl bg-gradient-to-br from-brand-500 to-fuchsia-500 text-lg font-bold text-white" aria-hidden>
                  {(g.name || "?").slice(0, 1).toUpperCase()}
                </span>
                <div className="min-w-0">
                  <p className="truncate font-semibold">{g.name || g.id}</p>
                  <p className="text-xs muted">{g.id}</p>
                </div>
              </div>
              <div className="mt-4 flex gap-6 text-sm">
                <span><b className="tabular-nums">{g.members}</b> <span className="muted">members</span></span>
                <span className="flex items-center gap-1.5"><span className="h-2 w-2 rounded-full bg-emerald-500" aria-hidden /><b className="tabular-nums">{g.online}</b> <span className="muted">online</span></span>
              </div>
            </Link>
          </li>
        ))}
      </ul>
    </>
  );
}
