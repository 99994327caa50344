import type { ReactNode } from "react";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import Members from "./Members";
import Analytics from "./Analytics";
import { Privacy } from "./Settings";
import { ScoreBlock } from "./MemberDetail";

// Responses as the host sends them (captured from `spywatcher serve --simulate`
// with the first-party scorers), trimmed.
const G = "599945602960195584";
const scorerList = {
  scorers: [
    { scorer: "ghost-score", active: true, last_run: { run_id: "r1", guild_id: G, scorer: "ghost-score", version: "1.0.0", cause: "request", from: "2026-11-20T07:44:58Z", to: "2026-11-27T07:44:58Z", started_at: "2026-11-27T07:44:58Z", finished_at: "2026-11-27T07:44:58Z", members: 150 } },
    { scorer: "suspicion-score", active: true, last_run: { run_id: "r2", guild_id: G, scorer: "suspicion-score", version: "1.0.0", cause: "request", from: "2026-11-20T07:44:58Z", to: "2026-11-27T07:44:58Z", started_at: "2026-11-27T07:44:58Z", finished_at: "2026-11-27T07:44:58Z", members: 150 } },
  ],
};
const ranked = (scorer: string) => ({
  scorer,
  computed_at: "2026-11-27T07:44:58.553Z",
  items: [{ user_id: "1193951583839191191", name: "Icy Beetle", score: 94.7, factors: [{ name: "online_hours_per_message", contribution: 94.7, value: 72 }], explanation: "Online 72.0 h for 0 messages: ghost" }],
  next_cursor: "",
});
const members = {
  members: [
    { guild_id: G, user_id: "1193951583839191191", username: "icy.beetle151", name: "Icy Beetle", bot: false, joined_at: "2026-11-24T07:44:52.355Z", banned: false, last_seen: "2026-11-24T16:56:46.764Z", message_count: 0, status: "online", client_status: { desktop: "online" }, roles: [] },
    { guild_id: G, user_id: "1435903181568606501", username: "bold.ferret293", name: "Bold Ferret", bot: false, banned: false, status: "offline" },
  ],
};
const settings = {
  guild_id: G, configured: true, timezone: "UTC",
  tracking: { presence: true, messages: true, typing: true, voice: true, members: true },
  retention: { events_days: 30, presence_days: 90, messages_days: 90, scores_days: 90, plugin_data_days: 90, aggregates_days: 0 },
  delete_on_leave: false, updated_by: "simulator", updated_at: "2026-11-27T07:44:52.356Z",
};

type Handler = (url: URL, init: RequestInit) => unknown;
function serve(h: Handler) {
  const calls: { url: URL; init: RequestInit }[] = [];
  vi.stubGlobal("fetch", vi.fn(async (u: string, init: RequestInit) => {
    const url = new URL(u, "http://x");
    calls.push({ url, init });
    const body = h(url, init);
    if (body instanceof Response) return body;
    return body === undefined ? new Response('{"error":{"code":"not_found","message":"no"}}', { status: 404 }) : new Response(JSON.stringify(body), { status: 200 });
  }));
  return calls;
}

function wrap(path: string, route: string, el: ReactNode) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[path]}><Routes><Route path={route} element={el} /></Routes></MemoryRouter>
    </QueryClientProvider>,
  );
}

// jsdom has no layout: charts get a ResizeObserver that never reports.
class NoResize { observe() {} unobserve() {} disconnect() {} }
beforeEach(() => vi.stubGlobal("ResizeObserver", NoResize));
afterEach(() => vi.unstubAllGlobals());

test("members: lists the scorers, then shows the chosen one's scores per member", async () => {
  const calls = serve((url) => {
    if (url.pathname.endsWith("/members")) return members;
    if (url.pathname.endsWith("/scores")) return url.searchParams.get("scorer") ? ranked(url.searchParams.get("scorer")!) : scorerList;
  });
  wrap(`/guilds/${G}/members`, "/guilds/:guild/members", <Members />);
  expect(await screen.findByRole("columnheader", { name: "Ghost score" })).toBeInTheDocument();
  const row = (await screen.findByRole("link", { name: /Icy Beetle/ })).closest("tr")!;
  expect(await within(row).findByText("94.7")).toBeInTheDocument();
  // A member the scorer did not rank shows a dash, not a crash.
  expect(within(screen.getByRole("link", { name: /Bold Ferret/ }).closest("tr")!).getByTitle("Not scored by Ghost")).toHaveTextContent("—");
  await userEvent.selectOptions(screen.getByLabelText("Score"), "suspicion-score");
  expect(await screen.findByRole("columnheader", { name: "Suspicion score" })).toBeInTheDocument();
  expect(calls.some((c) => c.url.searchParams.get("scorer") === "suspicion-score")).toBe(true);
});

test("members: survives odd responses (no members field, scores unavailable)", async () => {
  serve((url) => {
    if (url.pathname.endsWith("/members")) return {};
    if (url.pathname.endsWith("/scores")) return { scorers: null };
  });
  wrap(`/guilds/${G}/members`, "/guilds/:guild/members", <Members />);
  expect(await screen.findByText("No member matches.")).toBeInTheDocument();
  expect(screen.getByText(/no scorer runs in this guild/)).toBeInTheDocument();
});

test("analytics: heatmap cells from the real 7×24 document, role drift and leaderboard", async () => {
  const cells = Array.from({ length: 7 }, (_, d) => Array.from({ length: 24 }, (_, h) => (d === 1 && h >= 7 && h <= 10 ? [27, 68, 83, 11][h - 7] : 0)));
  serve((url) => {
    const p = url.pathname;
    if (p.endsWith("/analytics/heatmap")) return { timezone: "UTC", from: "2026-10-30T07:44:54Z", to: "2026-11-27T07:44:54Z", metric: url.searchParams.get("metric"), cells, max: 83 };
    if (p.endsWith("/analytics/roles")) return { from: "x", to: "y", gained: [{ role_id: "599946101180596239", name: "599946101180596239", count: 6 }], lost: null, churn_rate: 0.0433, members_changed: 13, timeline: [{ at: "2026-11-24T09:57:04.067Z", user_id: "1561041298872336541", role_id: "599946234039369747", change: "gained" }] };
    if (p.endsWith("/analytics/presence")) return { timezone: "UTC", days: [{ date: "2026-11-13", online_seconds: 0, multi_client_seconds: 0, by_client: { desktop: 0, mobile: 0, web: 0 } }] };
    if (p.endsWith("/scores")) return url.searchParams.get("scorer") ? ranked(url.searchParams.get("scorer")!) : scorerList;
  });
  wrap(`/guilds/${G}/analytics`, "/guilds/:guild/analytics", <Analytics />);
  const table = await screen.findByRole("table", { name: /messages, UTC/ });
  const tds = table.querySelectorAll("td[data-value]");
  expect(tds).toHaveLength(168);
  expect([...tds].filter((td) => td.getAttribute("data-value") !== "0").map((td) => td.getAttribute("title"))).toEqual(["Tue 7:00 — 27", "Tue 8:00 — 68", "Tue 9:00 — 83", "Tue 10:00 — 11"]);
  expect(screen.getByText("4.3 %")).toBeInTheDocument();
  expect(screen.getByText("13")).toBeInTheDocument();
  expect(screen.getByText("gained")).toBeInTheDocument();
  expect(await screen.findByText("No presence recorded in this window.")).toBeInTheDocument();
  expect(within(await screen.findByTestId("leaderboard")).getByText("Icy Beetle")).toBeInTheDocument();
});

test("analytics: a heatmap without cells renders an empty grid, not a crash", async () => {
  serve((url) => (url.pathname.endsWith("/analytics/heatmap") ? { metric: "messages" } : undefined));
  wrap(`/guilds/${G}/analytics`, "/guilds/:guild/analytics", <Analytics />);
  const table = await screen.findByRole("table", { name: /messages/ });
  expect(table.querySelectorAll('td[data-value="0"]')).toHaveLength(168);
  expect(screen.getByText(/No messages in this window/)).toBeInTheDocument();
});

test("settings: shows every tracking switch and retention, saves the change", async () => {
  const puts: unknown[] = [];
  serve((url, init) => {
    if (!url.pathname.endsWith("/settings")) return;
    if (init.method === "PUT") {
      const body = JSON.parse(String(init.body));
      puts.push(body);
      if (body.timezone === "Mars/Olympus") return new Response('{"error":{"code":"bad_request","message":"timezone must be an IANA time zone such as Europe/Paris"}}', { status: 400 });
      return { ...settings, ...body, tracking: { ...settings.tracking, ...body.tracking }, retention: { ...settings.retention, ...body.retention } };
    }
    return settings;
  });
  wrap(`/guilds/${G}/settings`, "/guilds/:guild/settings", <Privacy guild={G} />);
  for (const k of ["presence", "messages", "typing", "voice", "members"]) expect(await screen.findByLabelText(`Track ${k}`)).toBeChecked();
  expect(screen.getByLabelText("events")).toHaveValue(30);
  expect(screen.getByLabelText("aggregates")).toHaveValue(0);
  expect(screen.getByLabelText("Delete on leave")).not.toBeChecked();
  expect(screen.getByRole("button", { name: "Save" })).toBeDisabled();
  await userEvent.click(screen.getByLabelText("Track members"));
  await userEvent.clear(screen.getByLabelText("events"));
  await userEvent.type(screen.getByLabelText("events"), "45");
  await userEvent.click(screen.getByLabelText("Delete on leave"));
  await userEvent.click(screen.getByRole("button", { name: "Save" }));
  expect(await screen.findByText("Settings saved.")).toBeInTheDocument();
  expect(puts[0]).toEqual({
    timezone: "UTC",
    tracking: { presence: true, messages: true, typing: true, voice: true, members: false },
    retention: { ...settings.retention, events_days: 45 },
    delete_on_leave: true,
  });
  expect(screen.getByLabelText("Track members")).not.toBeChecked();
  await userEvent.clear(screen.getByLabelText(/Time zone/));
  await userEvent.type(screen.getByLabelText(/Time zone/), "Mars/Olympus");
  await userEvent.click(screen.getByRole("button", { name: "Save" }));
  expect(await screen.findByRole("alert")).toHaveTextContent("Not saved: timezone must be an IANA time zone");
});

test("settings: fields the server leaves out read as off / 0", async () => {
  serve((url) => (url.pathname.endsWith("/settings") ? { guild_id: G, configured: false, tracking: { presence: true } } : undefined));
  wrap(`/guilds/${G}/settings`, "/guilds/:guild/settings", <Privacy guild={G} />);
  expect(await screen.findByLabelText("Track presence")).toBeChecked();
  expect(screen.getByLabelText("Track members")).not.toBeChecked();
  expect(screen.getByLabelText("scores")).toHaveValue(0);
  expect(screen.getByText(/Not configured yet/)).toBeInTheDocument();
});

test("member scores: score, explanation and factors with numeric, boolean and missing values", () => {
  render(
    <ScoreBlock s={{
      scorer: "lurker-score", score: 96, explanation: "Never posted; online 72.0 h in the last 7 days", computed_at: "2026-11-27T07:44:58.55Z",
      factors: [{ name: "online_since_last_message", contribution: 86.4, value: 72 }, { name: "never_posted", contribution: 9.6, value: true }, { name: "join_to_first_message", contribution: 0 }],
      history: [{ at: "2026-11-27T07:44:58.55Z", score: 96 }],
    }} />,
  );
  expect(screen.getByRole("heading", { name: "Lurker" })).toBeInTheDocument();
  expect(screen.getByText("96.0")).toBeInTheDocument();
  const f = screen.getByRole("list", { name: "Lurker factors" });
  expect(within(f).getByText("(72)")).toBeInTheDocument();
  expect(within(f).getByText("(yes)")).toBeInTheDocument();
  expect(within(f).getByText("+86.4")).toBeInTheDocument();
  expect(within(f).getByText("join to first message")).toBeInTheDocument();
  expect(screen.getByText(/Trend: one run so far/)).toBeInTheDocument();
  render(<ScoreBlock s={{ scorer: "x", score: 1, factors: null, history: null }} />);
  expect(screen.getByText(/No history yet/)).toBeInTheDocument();
});
