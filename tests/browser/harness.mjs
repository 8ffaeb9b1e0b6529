// Shared pieces of the browser tests: the real relay binary on a loopback port with a fresh
// data dir, and headless Debian Chromium driven by playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const artifacts = join(root, "test-artifacts");
mkdirSync(artifacts, { recursive: true });

const relayBin = process.env.SOTTO_RELAY_BIN ?? join(root, "target", "release", "sotto-relay");

/**
 * A stranger (tests/src/bin/sotto-stranger.rs, a native messenger client) who writes `text` to
 * the address `to` without an invite. `sent` resolves once the relay has the text; `heard`
 * with the first text that comes back.
 */
export function stranger(url, to, name, text) {
  execFileSync("cargo", ["build", "-q", "-p", "sotto-tests", "--bin", "sotto-stranger"], { cwd: root, stdio: "inherit" });
  const child = spawn(join(root, "target", "debug", "sotto-stranger"), [url, to, name, text], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let exited = null;
  const waiting = [];
  const check = () => {
    for (const w of waiting.splice(0)) {
      const m = out.match(w.re);
      if (m) w.resolve(m[1]);
      else if (exited !== null) w.reject(new Error(`the stranger exited ${exited} before ${w.re}:\n${out}`));
      else waiting.push(w);
    }
  };
  child.stdout.on("data", (d) => { out += d; check(); });
  child.stderr.on("data", (d) => { out += d; });
  child.on("exit", (code, signal) => { exited = code ?? signal; check(); });
  const waitFor = (re) => {
    const p = new Promise((resolve, reject) => { waiting.push({ re, resolve, reject }); check(); });
    p.catch(() => {}); // awaited or not: a stranger stopped on purpose is no failure by itself
    return p;
  };
  return { sent: waitFor(/^(sent)$/m), heard: waitFor(/^heard (.*)$/m), stop: () => child.kill() };
}

/** Starts the relay; resolves once it logs its address. */
export async function startRelay({ dataDir, listen = "127.0.0.1:0", log: level = "info", args = [] } = {}) {
  dataDir ??= mkdtempSync(join(tmpdir(), "sotto-browser-"));
  const child = spawn(relayBin, ["--listen", listen, "--data-dir", dataDir, "--log", level, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("relay did not start:\n" + log)), 15000);
    const onData = (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`relay exited ${code}:\n${log}`)); });
  });
  child.stdout.on("data", (d) => { log += d; });
  child.stderr.on("data", (d) => { log += d; });
  return {
    url, dataDir, child,
    log: () => log,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      await exited;
    },
    cleanup() { rmSync(dataDir, { recursive: true, force: true }); },
  };
}

export const chromiumFlags = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

/** Headless Chromium with the flags above, and `extra` ones (a fake microphone). */
export async function launchBrowser(extra = []) {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: [...chromiumFlags, ...extra] });
}

/** A page that records console errors and uncaught exceptions. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors };
}

/**
 * Headless pages are never hidden: lets the test hide `page` (`window.__hidden`) and records
 * its notifications in `window.__notes` instead of showing them. Call before the page loads.
 */
export async function recordNotifications(page) {
  await page.addInitScript(() => {
    window.__hidden = false;
    window.__notes = [];
    Object.defineProperty(Document.prototype, "hidden", { get: () => window.__hidden });
    window.Notification = class {
      static permission = "granted";
      static requestPermission() { return Promise.resolve("granted"); }
      constructor(title, o) { window.__notes.push([title, o?.body]); } };
  });
}

/** Creates an identity in a fresh page and waits until it is online. */
export async function createIdentity(page, name, passphrase = "") {
  await page.getByLabel("Display name").fill(name);
  if (passphrase) await page.getByLabel("Passphrase (optional)").fill(passphrase);
  await page.getByRole("button", { name: "Create your identity" }).click();
  await connection(page, "Online");
}

/** Ada and Bo (two pages) become contacts through an invite link of Ada's; each ends in the
 *  chat with the other. */
export async function befriend(relay, ada, bo) {
  await ada.page.goto(relay.url + "/");
  await createIdentity(ada.page, "Ada");
  await ada.page.goto(relay.url + "/#/new");
  await ada.page.getByRole("button", { name: "Create invite link" }).click();
  const link = await ada.page.getByTestId("invite-link").inputValue();
  await bo.page.goto(relay.url + "/");
  await createIdentity(bo.page, "Bo");
  await bo.page.goto(link);
  await bo.page.getByRole("button", { name: "Accept" }).click();
  await ada.page.getByTestId("chat-row").first().click();
  await bo.page.getByRole("textbox", { name: "Message", exact: true }).waitFor();
}

/** Waits for the connection status (present even when a phone layout hides the list). */
export async function connection(page, state, timeout = 20000) {
  await page.getByTestId("connection").getByText(state).waitFor({ state: "attached", timeout });
}

/** Every file under `dir`, concatenated, plus `extra` (the relay log). */
export function haystack(dir, extra = "") {
  const parts = [Buffer.from(extra)];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p); else parts.push(readFileSync(p));
    }
  };
  walk(dir);
  return Buffer.concat(parts);
}

const axeSource = readFileSync(join(root, "node_modules", "axe-core", "axe.min.js"), "utf8");

/** Runs axe-core (WCAG 2 A/AA rules) on the page; returns the serious and critical findings. */
export async function accessibilityProblems(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}
