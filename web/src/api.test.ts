import { api, ApiError, csrfToken } from "./api";
import { wsURL } from "./live";

afterEach(() => vi.unstubAllGlobals());

test("reads the CSRF token from its cookie", () => {
  expect(csrfToken("a=1; sw_csrf=tok%2Fen; b=2")).toBe("tok/en");
  expect(csrfToken("a=1")).toBe("");
});

test("sends the CSRF header on changes only", async () => {
  document.cookie = "sw_csrf=abc";
  const calls: [string, RequestInit][] = [];
  vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit) => { calls.push([url, init]); return new Response("{}", { status: 200 }); }));
  await api("/guilds");
  await api("/auth/apikeys", { method: "POST", json: { name: "x" } });
  expect(new Headers(calls[0][1].headers).get("X-CSRF-Token")).toBeNull();
  expect(new Headers(calls[1][1].headers).get("X-CSRF-Token")).toBe("abc");
  expect(new Headers(calls[1][1].headers).get("Content-Type")).toBe("application/json");
});

test("refreshes once on 401, then retries", async () => {
  const seen: string[] = [];
  vi.stubGlobal("fetch", vi.fn(async (url: string) => {
    seen.push(url);
    if (url.endsWith("/auth/refresh")) return new Response("{}", { status: 200 });
    return seen.filter((u) => u === url).length === 1 ? new Response('{"error":{"code":"unauthorized","message":"x"}}', { status: 401 }) : new Response('{"ok":1}', { status: 200 });
  }));
  expect(await api<{ ok: number }>("/guilds")).toEqual({ ok: 1 });
  expect(seen).toEqual(["/api/v1/guilds", "/api/v1/auth/refresh", "/api/v1/guilds"]);
});

test("a 404 is 'not available yet'", async () => {
  vi.stubGlobal("fetch", vi.fn(async () => new Response('{"error":{"code":"not_found","message":"no route"}}', { status: 404 })));
  const err = (await api("/guilds/1/scores").catch((e: unknown) => e)) as ApiError;
  expect(err).toBeInstanceOf(ApiError);
  expect(err.notAvailable).toBe(true);
});

test("builds the WebSocket URL from the page's origin", () => {
  expect(wsURL("/api/v1/ws?ticket=t", { protocol: "https:", host: "dash.example" } as Location)).toBe("wss://dash.example/api/v1/ws?ticket=t");
  expect(wsURL("/api/v1/ws", { protocol: "http:", host: "127.0.0.1:8080" } as Location)).toBe("ws://127.0.0.1:8080/api/v1/ws");
});

test("score and analytics helpers take the real shapes and odd ones", async () => {
  const { defaultScorer, heatmapCells, factorValue, list, scorerLabel } = await import("./api");
  expect(defaultScorer({ scorers: [{ scorer: "a", active: false }, { scorer: "b", active: true, last_run: { members: 0 } as never }, { scorer: "c", active: true, last_run: { members: 5 } as never }] })).toBe("c");
  expect(defaultScorer({ scorers: [{ scorer: "a", active: false }, { scorer: "b", active: true }] })).toBe("b");
  expect(defaultScorer({ scorers: null as never })).toBe("");
  expect(defaultScorer(undefined)).toBe("");
  expect(scorerLabel("suspicion-score")).toBe("Suspicion");
  expect(factorValue(true)).toBe("yes");
  expect(factorValue(7.94)).toBe("7.9");
  expect(factorValue(416)).toBe("416");
  expect(factorValue(undefined)).toBe("");
  expect(list(null)).toEqual([]);
  const c = heatmapCells({ timezone: "UTC", from: "", to: "", metric: "messages", cells: [[1, 2], null as never], max: 2 });
  expect(c).toHaveLength(7);
  expect(c.every((r) => r.length === 24)).toBe(true);
  expect(c[0].slice(0, 3)).toEqual([1, 2, 0]);
  expect(heatmapCells(undefined).flat().every((v) => v === 0)).toBe(true);
});
