// Benchmark (not a test): a file end to end between two real pages over the real relay on
// loopback: chosen → sealed and uploaded → message → downloaded, opened and saved, with the
// peak private memory of each page's renderer process, the file worker included (it runs in its
// page's process). Run by scripts/bench-app.sh.
//   node tests/browser/big-file.mjs [MiB=1024]
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRelay, launchBrowser, newPage, befriend } from "./harness.mjs";

const MIB = Number(process.argv[2] ?? 1024);
const work = mkdtempSync(join(tmpdir(), "sotto-big-"));
const file = join(work, "big.bin");
{
  const out = createWriteStream(file);
  const block = Buffer.alloc(1 << 20, "sotto benchmark file ");
  for (let i = 0; i < MIB; i++) if (!out.write(block)) await new Promise((r) => out.once("drain", r));
  await new Promise((r) => out.end(r));
}

/** Renderer processes (pid → peak private memory in bytes: RssAnon, what the page itself
 *  holds, not the shared code of Chromium), sampled every 100 ms. */
const peaks = new Map();
const rss = (pid) => {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/RssAnon:\s+(\d+) kB/)[1]) * 1024;
  } catch { return 0; }
};
const renderers = () => readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
  try { return readFileSync(`/proc/${p}/cmdline`, "utf8").includes("--type=renderer"); } catch { return false; }
});
const sampler = setInterval(() => {
  for (const pid of renderers()) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, rss(pid)));
}, 100);

const relay = await startRelay();
const browser = await launchBrowser();
try {
  const ada = await newPage(browser);
  const bo = await newPage(browser, { acceptDownloads: true });
  await befriend(relay, ada, bo);
  peaks.clear();
  const idle = new Map(renderers().map((p) => [p, rss(p)]));

  const t0 = Date.now();
  await ada.page.getByTestId("attach").setInputFiles(file);
  await bo.page.getByTestId("file").waitFor({ timeout: 600_000 });
  const up = Date.now() - t0;
  const t1 = Date.now();
  const [download] = await Promise.all([
    bo.page.waitForEvent("download", { timeout: 600_000 }),
    bo.page.getByTestId("save").click(),
  ]);
  const opened = Date.now() - t1;
  const saved = join(work, "saved.bin");
  await download.saveAs(saved);
  if (statSync(saved).size !== MIB << 20) throw new Error("the saved file has the wrong size");
  const mb = (MIB << 20) / 1e6;
  console.log(`${MIB} MiB: chosen → in Bo's chat ${up} ms (${(mb / up * 1000).toFixed(0)} MB/s sealed and uploaded); ` +
    `Save → opened on disk ${opened} ms (${(mb / opened * 1000).toFixed(0)} MB/s downloaded and opened)`);
  const mib = (b) => (b / (1 << 20)).toFixed(0);
  for (const [pid, peak] of peaks) {
    if (peak > 0) console.log(`renderer ${pid}: idle ${mib(idle.get(pid) ?? 0)} MiB, peak ${mib(peak)} MiB`);
  }
} finally {
  clearInterval(sampler);
  await browser.close();
  await relay.stop();
  relay.cleanup();
  rmSync(work, { recursive: true, force: true });
}
