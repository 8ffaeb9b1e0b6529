// Benchmark (not a test): send→render latency between two real pages over the real relay, and
// the time from navigation to an interactive chat list. Run by scripts/bench-app.sh.
//   node tests/browser/latency.mjs [messages=100]
import { startRelay, launchBrowser, newPage, befriend, createIdentity } from "./harness.mjs";

const N = Number(process.argv[2] ?? 100);
const relay = await startRelay();
const browser = await launchBrowser();
try {
  const ada = await newPage(browser);
  const bo = await newPage(browser);
  await befriend(relay, ada, bo);

  // Bo's page stamps each bubble when it enters the DOM (same clock as Ada's: one machine).
  await bo.page.evaluate(() => {
    window.__seen = {};
    new MutationObserver(() => {
      for (const el of document.querySelectorAll(".messages .text")) {
        if (!(el.textContent in window.__seen)) window.__seen[el.textContent] = performance.timeOrigin + performance.now();
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const latencies = [];
  for (let i = 0; i < N; i++) {
    const text = `latency probe ${i}`;
    const sentAt = await ada.page.evaluate((text) => {
      const box = document.getElementById("composer");
      box.value = text;
      const t = performance.timeOrigin + performance.now();
      box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
      return t;
    }, text);
    const shownAt = await bo.page.waitForFunction((text) => window.__seen[text], text, { polling: 1 });
    latencies.push((await shownAt.jsonValue()) - sentAt);
  }
  latencies.sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(`send→render over ${N} messages: median ${pick(0.5).toFixed(1)} ms, p95 ${pick(0.95).toFixed(1)} ms, max ${latencies.at(-1).toFixed(1)} ms`);

  // Navigation → interactive chat list, with an existing identity and one chat (warm cache).
  await bo.context.close();
  // Stamped by the page itself when the first chat row enters the DOM.
  await ada.context.addInitScript(() => {
    new MutationObserver((_, obs) => {
      if (document.querySelector("[data-testid=chat-row]")) { window.__listAt = performance.now(); obs.disconnect(); }
    }).observe(document, { childList: true, subtree: true });
  });
  const starts = [];
  for (let i = 0; i < 7; i++) {
    await ada.page.close();
    ada.page = await ada.context.newPage();
    await ada.page.goto(relay.url + "/");
    await ada.page.getByTestId("chat-row").first().waitFor();
    starts.push(await ada.page.evaluate(() => window.__listAt));
  }
  starts.sort((a, b) => a - b);
  console.log(`navigation → chat list (warm cache, 7 loads): median ${starts[3].toFixed(0)} ms, max ${starts.at(-1).toFixed(0)} ms`);

  // Unlocking with a passphrase: Argon2id (19 MiB, 2 passes) in wasm, then loading the store.
  const locked = await newPage(browser);
  await locked.page.goto(relay.url + "/");
  await createIdentity(locked.page, "Locked", "a passphrase to measure");
  const unlocks = [];
  for (let i = 0; i < 3; i++) {
    await locked.page.reload();
    await locked.page.getByLabel("Passphrase").fill("a passphrase to measure");
    const t0 = Date.now();
    await locked.page.getByRole("button", { name: "Unlock" }).click();
    await locked.page.getByRole("link", { name: "Invite someone" }).waitFor();
    unlocks.push(Date.now() - t0);
  }
  unlocks.sort((a, b) => a - b);
  console.log(`unlock with a passphrase (click → chat list, 3 runs): median ${unlocks[1]} ms, max ${unlocks[2]} ms`);
} finally {
  await browser.close();
  await relay.stop();
  relay.cleanup();
}
