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
  "--simulate-history", "6h", "--simulate-speed", "20000", "--admin-token", "e2e-admin-token-0123456789"], { stdio: ["ignore", "pipe", "pipe"] });
let log = "";
host.stdout.on("data", (d) => (log += d));
host.stderr.on("data", (d) => (log += d));
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
page.on("console", (m) => m.type() === "error" && !/status of 40[14]/.test(m.text()) && errors.push(m.text()));
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
    const auth = { Authorization: "Bearer e2e-admin-token-0123456789" };
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
  await step("members and a member", async () => {
    await page.getByRole("link", { name: "Members", exact: true }).click();
    await page.getByRole("table").waitFor();
    await page.getByLabel("Sort by").selectOption("messages");
    await page.getByRole("table").locator("tbody tr").first().waitFor();
    await shot("04-members");
    await page.getByRole("table").locator("tbody tr a").first().click();
    await page.getByText("Online time by client").waitFor();
    await page.getByText("Timeline").waitFor();
    await shot("05-member");
  });
  await step("analytics", async () => {
    await page.getByRole("link", { name: "Analytics" }).click();
    await page.getByText("Guild heatmap").waitFor();
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
    await shot("14-settings");
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
