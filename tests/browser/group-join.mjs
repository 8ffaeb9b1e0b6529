// Benchmark (not a test): a newcomer joining a group of 1,000 members in the browser, by a
// link, until they can read and send. A native admin (tests/src/bin/sotto-group-admin.rs) makes
// the group (members who never come online) and lets in whoever asks; the page asks, gets the
// welcome (about 310 KB of changes, in parts), checks every change and joins, then writes, and
// the admin reads it. Run by scripts/bench-app.sh.
//   node tests/browser/group-join.mjs [members=1000] [runs=3]
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { startRelay, launchBrowser, newPage, createIdentity, root } from "./harness.mjs";

const MEMBERS = Number(process.argv[2] ?? 1000);
const RUNS = Number(process.argv[3] ?? 3);
execFileSync("cargo", ["build", "-q", "--release", "-p", "sotto-tests", "--bin", "sotto-group-admin"], { cwd: root, stdio: "inherit" });
const relay = await startRelay();
const admin = spawn(join(root, "target", "release", "sotto-group-admin"), [relay.url, String(MEMBERS)], { stdio: ["ignore", "pipe", "inherit"] });
const lines = [];
const waiters = [];
createInterface({ input: admin.stdout }).on("line", (line) => {
  lines.push(line);
  for (const w of waiters.splice(0)) w();
});
async function line(pred) {
  for (;;) {
    const i = lines.findIndex(pred);
    if (i >= 0) return lines.splice(i, 1)[0];
    await new Promise((r) => waiters.push(r));
  }
}
const browser = await launchBrowser();
try {
  const link = (await line((l) => l.startsWith("link "))).slice(5);
  const rows = [];
  for (let run = 0; run < RUNS; run++) {
    const p = await newPage(browser);
    await p.page.goto(relay.url + "/");
    await createIdentity(p.page, `Newcomer ${run}`);
    await p.page.goto(link);
    const ask = p.page.getByRole("button", { name: "Ask to join" });
    await ask.waitFor();
    const t0 = Date.now();
    await ask.click();
    await p.page.goto(relay.url + "/#/");
    await p.page.getByTestId("chat-row").filter({ hasText: "Town" }).waitFor({ timeout: 120_000 });
    const joined = Date.now() - t0;
    await p.page.getByTestId("chat-row").filter({ hasText: "Town" }).click();
    const box = p.page.getByRole("textbox", { name: "Message", exact: true });
    await box.fill(`hello from newcomer ${run}`);
    const t1 = Date.now();
    await box.press("Enter");
    await line((l) => l === `heard hello from newcomer ${run}`);
    const sent = Date.now() - t1;
    rows.push({ joined, sent, total: joined + sent });
    console.log(`run ${run}: asked → in the group ${joined} ms; first message → the admin read it ${sent} ms`);
    await p.context.close();
  }
  const median = (k) => rows.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
  console.log(`members ${MEMBERS}: median asked → joined ${median("joined")} ms, first message read ${median("sent")} ms, total ${median("total")} ms`);
} finally {
  admin.kill();
  await browser.close();
  await relay.stop();
  relay.cleanup();
}
