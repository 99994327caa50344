// End-to-end: a real host (bin/spywatcher, built with the dashboard) running
// the simulator, driven by Debian's headless Chromium through playwright-core.
// Every page is screenshotted into e2e/screenshots/.
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

const root = new URL("../..", import.meta.url).pathname;
const bin = root + "bin/spywatcher";
const data = root + "web/e2e/.data";
const shots = root + "web/e2e/screenshots";
const dir = `${data}/host`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
mkdirSync(shots, { recursive: true });

const port = await new Promise((res) => { const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); }); });
const base = `http://127.0.0.1:${port}`;
const user = "e2e-admin", password = "correct horse battery staple";

// The local account first, with the CLI.
execFileSync(bin, ["user", "create", "--admin", "--data-dir", dir, user], { input: password + "\n", stdio: ["pipe", "inherit", "inherit"] });

const host = spawn(bin, ["serve", "--simulate", "--addr", `127.0.0.1:${port}`, "--data-dir", dir, "--simulate-members", "150",
  "--simulate-history", "6h", "--simulate-speed", "20000", "--admin-token", "e2e-admin-token-0123456789",
  // The first-party plugins (make plugins), scorers included: enabled and granted in the simulated guild.
  "--plugins-dir", root + "bin/plugins", "--score-interval", "10m"], { stdio: ["ignore", "pipe", "pipe"] });
let log = "";
host.stdout.on("data", (d) => (log += d));
host.stderr.on("data", (d) => (log += d));
const auth = { Authorization: "Bearer e2e-admin-token-0123456789" };
const getJSON = async (path) => { const r = await fetch(base + "/api/v1" + path, { headers: auth }); if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`); return r.json(); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (msg) => { console.error("E2E FAILED:", msg, "\n--- host log (tail) ---\n" + log.slice(-3000)); host.kill(); process.exit(1); };

// Wait until the simulated guild is there and live.
let guild = "";
for (let i = 0; i < 300 && !guild; i++) {
  try {
    const r = await fetch(`${base}/api/v1/guilds`, { headers: { Authorization: "Bearer e2e-admin-token-0123456789" } });
    if (r.ok) guild = (await r.json()).guilds?.[0]?.id ?? "";
  } catch { /* not up yet */ }
  if (!guild) await sleep(200);
}
if (!guild) fail("no guild appeared");

// A plugin to install: the host's well-behaved test guest.
const wasm = readFileSync(`${data}/plugin.wasm`);
const manifest = {
  id: "e2e-counter", name: "Event counter", version: "1.0.0", runtime: "wasm", abi_version: 1,
  description: "Counts the guild's events by kind and serves the counts.", authors: ["Spywatcher e2e"],
  artifact: { path: "plugin.wasm", sha256: createHash("sha256").update(wasm).digest("hex") },
  hooks: ["on_events", "http", "tick", "delete_user", "score"], events: ["message.create", "presence.update"],
  routes: [{ method: "GET", path: "/counts", description: "Event counts" }],
  permissions: [
    { name: "events.message.read", reason: "count messages" },
    { name: "events.presence.read", reason: "count presence updates" },
    { name: "kv.read", reason: "read its counts" },
    { name: "kv.write", reason: "store its counts" },
    { name: "routes.serve", reason: "serve the counts page" },
    { name: "scores.write", reason: "score members by messages" },
    { name: "metrics.write", reason: "count batches" },
    { name: "members.read", reason: "show names next to counts", optional: true },
  ],
  config_schema: { type: "object", properties: { greeting: { type: "string", title: "Greeting", description: "Shown on the counts page", maxLength: 20 } }, additionalProperties: false },
  limits: { timeout_ms: 2000, memory_mb: 64 },
};
writeFileSync(`${data}/plugin.json`, JSON.stringify(manifest));

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
const page = await ctx.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
// A 400 is an error only where the run does not provoke one on purpose.
let expect400 = false;
page.on("console", (m) => m.type() === "error" && !/status of 40[14]/.test(m.text()) && !(expect400 && /status of 400/.test(m.text())) && errors.push(m.text()));
const shot = async (name) => { await sleep(400); await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); console.log("screenshot", name); };
const step = async (name, fn) => { try { await fn(); console.log("ok  ", name); } catch (e) { await page.screenshot({ path: `${shots}/FAILED-${name.replace(/\W+/g, "-")}.png`, fullPage: true }); fail(`${name}: ${e.message}`); } };

try {
  await step("log in", async () => {
    await page.goto(base + "/");
    await page.waitForURL(/\/login/);
    await shot("01-login");
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/guilds$/);
    await page.getByText("online").first().waitFor();
    await shot("02-guilds");
  });
  await step("presence updates live without a reload", async () => {
    await page.locator(`a[href="/guilds/${guild}"]`).first().click();
    await page.getByTestId("live-state").filter({ hasText: "Live" }).waitFor({ timeout: 20000 });
    const loaded = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    const first = await page.getByTestId("online-count").textContent();
    // Bring three offline members online on mobile through the ingest API.
    const off = await (await fetch(`${base}/api/v1/guilds/${guild}/members?status=offline&limit=3`, { headers: auth })).json();
    const now = new Date().toISOString();
    const evs = off.members.map((m, i) => ({ id: `e2e-presence-${Date.now()}-${i}`, kind: "presence.update", guild_id: guild, user_id: m.user_id, at: now,
      data: { status: "online", client_status: { mobile: "online" } } }));
    const r = await fetch(`${base}/api/v1/events`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify(evs) });
    if (!r.ok) throw new Error("ingest: " + r.status + " " + (await r.text()));
    await page.getByTestId("live-events").locator("li", { hasText: "Presence" }).first().waitFor({ timeout: 30000 });
    // The online count follows the stream: it changes without a navigation.
    await page.waitForFunction((v) => document.querySelector('[data-testid="online-count"]')?.textContent !== v, first, { timeout: 30000 });
    const after = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    if (after !== loaded) throw new Error("the page reloaded");
    await shot("03-overview");
  });
  await step("scores are computed", async () => {
    // Score the simulated guild now rather than wait for the schedule.
    const r = await fetch(`${base}/api/v1/guilds/${guild}/scores/recompute`, { method: "POST", headers: auth });
    if (r.status !== 202) throw new Error("recompute: " + r.status + " " + (await r.text()));
    for (let i = 0; ; i++) {
      const l = await getJSON(`/guilds/${guild}/scores`);
      if ((l.scorers ?? []).length >= 3 && l.scorers.every((s) => s.last_run?.finished_at && s.last_run.members > 0)) break;
      if (i > 150) throw new Error("scorers did not finish: " + JSON.stringify(l));
      await sleep(200);
    }
  });
  await step("members and a member", async () => {
    await page.getByRole("link", { name: "Members", exact: true }).click();
    await page.getByRole("table").waitFor();
    await page.getByLabel("Sort by").selectOption("messages");
    await page.getByRole("table").locator("tbody tr").first().waitFor();
    // The score column shows the chosen scorer's real scores.
    const scorer = await page.getByLabel("Score", { exact: true }).inputValue();
    const ranked = await getJSON(`/guilds/${guild}/scores?scorer=${scorer}&limit=500`);
    if (!ranked.items?.length) throw new Error("no scores for " + scorer);
    await page.getByRole("columnheader", { name: /score/ }).waitFor();
    const firstRow = page.getByRole("table").locator("tbody tr").first();
    const href = await firstRow.locator("a").first().getAttribute("href");
    const uid = href.split("/").pop();
    const want = ranked.items.find((s) => s.user_id === uid);
    if (want) await firstRow.getByText(want.score.toFixed(1), { exact: true }).waitFor();
    await shot("04-members");
    await firstRow.locator("a").first().click();
    await page.getByText("Online time by client").waitFor();
    await page.getByText("Timeline").waitFor();
    // Scores with their factors, as the member's scores endpoint has them.
    const ms = await getJSON(`/guilds/${guild}/members/${uid}/scores`);
    if (!ms.scorers?.length) throw new Error("member has no scores");
    for (const s of ms.scorers) {
      const block = page.getByTestId(`score-${s.scorer}`);
      await block.waitFor();
      await block.getByText(s.score.toFixed(1)).first().waitFor();
      for (const f of s.factors ?? []) await block.getByText(f.name.replace(/_/g, " "), { exact: false }).first().waitFor();
    }
    await shot("05-member");
  });
  await step("analytics", async () => {
    await page.getByRole("link", { name: "Analytics" }).click();
    await page.getByText("Guild heatmap").waitFor();
    // Heatmap cells carry the API's numbers: 7 × 24 of them. The simulator
    // keeps sending, so a cell may only grow between the two reads.
    const hmBefore = await getJSON(`/guilds/${guild}/analytics/heatmap?metric=messages`);
    const cells = page.getByTestId("heatmap").locator("td[data-value]");
    await cells.first().waitFor();
    const shown = await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute("data-value"))));
    const hmAfter = await getJSON(`/guilds/${guild}/analytics/heatmap?metric=messages`);
    if (shown.length !== 168) throw new Error("heatmap cells: " + shown.length);
    const b = hmBefore.cells.flat(), a = hmAfter.cells.flat();
    if (!b.some((v) => v > 0)) throw new Error("the simulated guild has no messages in its heatmap");
    const off = shown.findIndex((v, i) => v < b[i] || v > a[i]);
    if (off >= 0) throw new Error(`heatmap cell ${off} shows ${shown[off]}, the API has ${b[off]}..${a[off]}`);
    // Role drift from the simulator's role changes, and the leaderboard.
    const rd = await getJSON(`/guilds/${guild}/analytics/roles`);
    if ((rd.gained ?? []).length + (rd.lost ?? []).length === 0) throw new Error("the simulated guild has no role drift");
    await page.getByTestId("role-drift").locator(".recharts-bar-rectangle").first().waitFor();
    await page.getByText("Members changed").waitFor();
    await page.getByTestId("leaderboard").locator("li").first().waitFor();
    await page.getByLabel("Heatmap metric").selectOption("presence");
    await page.getByTestId("heatmap").and(page.locator('[aria-label*="presence"]')).waitFor();
    await page.getByLabel("Heatmap metric").selectOption("messages");
    await page.getByTestId("heatmap").and(page.locator('[aria-label*="messages"]')).waitFor();
    await shot("06-analytics");
  });
  await step("install, enable and grant a plugin", async () => {
    await page.getByRole("link", { name: "Plugins" }).click();
    await page.getByLabel("Manifest (plugin.json)").setInputFiles(`${data}/plugin.json`);
    await page.getByLabel("Module (.wasm)").setInputFiles(`${data}/plugin.wasm`);
    await page.getByRole("button", { name: "Install" }).click();
    const card = page.getByTestId("plugin-e2e-counter");
    await card.waitFor();
    await card.getByRole("button", { name: "Enable in this guild" }).click();
    await card.getByRole("button", { name: "Disable" }).waitFor();
    await card.getByRole("button", { name: "Review permissions" }).click();
    await page.getByRole("dialog").getByText("events.message.read").waitFor();
    await shot("07-plugin-permissions");
    await page.getByRole("dialog").getByRole("button", { name: /^Grant/ }).click();
    await page.getByRole("dialog").waitFor({ state: "detached" });
    await card.getByTestId("plugin-state").filter({ hasText: /running|enabled/ }).waitFor({ timeout: 15000 });
    await card.getByRole("button", { name: "Settings" }).click();
    await page.getByLabel("Greeting").fill("hello");
    await shot("08-plugin-settings");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved.").waitFor();
    await shot("09-plugins");
  });
  await step("create an API key", async () => {
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByLabel("Name").fill("e2e key");
    await page.getByRole("group", { name: "Guilds" }).getByRole("checkbox").first().check();
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.getByTestId("api-key-secret").inputValue();
    if (!secret.startsWith("swk_")) throw new Error("no secret shown: " + secret);
    await shot("10-api-key-created");
    await page.getByRole("button", { name: "I have saved it" }).click();
    await page.getByRole("cell", { name: "e2e key" }).waitFor();
    const r = await fetch(`${base}/api/v1/guilds/${guild}`, { headers: { Authorization: "Bearer " + secret } });
    if (!r.ok) throw new Error("the new key does not work: " + r.status);
    await shot("11-api-keys");
  });
  await step("sessions, audit log, settings", async () => {
    await page.getByRole("link", { name: "Sessions" }).click();
    await page.getByText("this browser").waitFor();
    await shot("12-sessions");
    await page.goto(`${base}/guilds/${guild}/audit`);
    await page.getByRole("table").waitFor();
    await shot("13-audit");
    await page.getByRole("link", { name: "Guild settings" }).click();
    await page.getByText("Dashboard access").waitFor();
    // The privacy form shows the real settings, and a change is saved.
    const before = await getJSON(`/guilds/${guild}/settings`);
    if ((await page.getByLabel("Track typing").isChecked()) !== before.tracking.typing) throw new Error("typing switch does not match");
    if ((await page.getByLabel("events", { exact: true }).inputValue()) !== String(before.retention.events_days)) throw new Error("events retention does not match");
    // An invalid time zone is refused with the server's message.
    expect400 = true;
    await page.getByLabel("Time zone (heatmaps and daily totals)").fill("Mars/Olympus");
    await page.getByRole("button", { name: "Save", exact: true }).first().click();
    await page.getByText(/IANA time zone/).waitFor();
    await sleep(300);
    expect400 = false;
    await page.getByLabel("Time zone (heatmaps and daily totals)").fill(before.timezone);
    await page.getByLabel("Track typing").setChecked(!before.tracking.typing);
    await page.getByLabel("events", { exact: true }).fill("45");
    await page.getByLabel("Time zone (heatmaps and daily totals)").fill("Europe/Paris");
    await page.getByLabel("Delete on leave").setChecked(!before.delete_on_leave);
    await page.getByRole("button", { name: "Save", exact: true }).first().click();
    await page.getByText("Settings saved.").waitFor();
    await shot("14-settings");
    const after = await getJSON(`/guilds/${guild}/settings`);
    if (after.tracking.typing === before.tracking.typing || after.retention.events_days !== 45 || after.timezone !== "Europe/Paris" || after.delete_on_leave === before.delete_on_leave)
      throw new Error("the change was not saved: " + JSON.stringify(after));
    if (after.tracking.presence !== before.tracking.presence || after.tracking.members !== before.tracking.members || after.retention.presence_days !== before.retention.presence_days)
      throw new Error("fields not changed were changed: " + JSON.stringify(after));
    await page.reload();
    await page.getByLabel("events", { exact: true }).waitFor();
    if ((await page.getByLabel("events", { exact: true }).inputValue()) !== "45") throw new Error("the saved value is not shown after a reload");
  });
  await step("dark mode and a small screen", async () => {
    await page.goto(`${base}/guilds/${guild}`);
    await page.getByRole("button", { name: /dark mode/ }).click();
    await page.getByTestId("live-state").filter({ hasText: "Live" }).waitFor({ timeout: 20000 });
    await shot("15-overview-dark");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/guilds/${guild}/members`);
    await page.getByRole("table").waitFor();
    await shot("16-members-mobile");
  });
  if (errors.length) fail("console errors:\n" + errors.join("\n"));
  console.log("E2E PASSED");
} finally {
  await browser.close();
  host.kill("SIGTERM");
}
