// Benchmark (not a test): how fast the file worker's wasm (worker/, built with SIMD) seals and
// opens in headless Chromium, inside a Web Worker as the app runs it. Compare with
// `cargo run --release -p sotto-worker --example speed`. Run by scripts/bench-app.sh.
//   node tests/browser/file-speed.mjs [MiB=256]
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startRelay, launchBrowser, root } from "./harness.mjs";

const MIB = Number(process.argv[2] ?? 256);
const app = readdirSync(join(root, "target", "app"));
const glue = app.find((f) => /^worker-[0-9a-f]{16}\.js$/.test(f));
// The wasm goes in as bytes, so another build of it can be measured (WASM=path).
const wasm = [...readFileSync(process.env.WASM ?? join(root, "target", "app", app.find((f) => /^worker-[0-9a-f]{16}\.wasm$/.test(f))))];
const relay = await startRelay();
const browser = await launchBrowser();
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(relay.url + "/");
  const result = await page.evaluate(async ([glue, wasm, mib]) => {
    const source = `
      import init, { SealStream, OpenStream, pieceBytes, sealedPieceBytes } from "${location.origin}/${glue}";
      onmessage = async () => {
        await init({ module_or_path: new Uint8Array(${JSON.stringify(wasm)}) });
        const pieces = Math.ceil(${mib} * 1048576 / pieceBytes());
        const piece = new Uint8Array(pieceBytes()).fill(7);
        const out = new Uint8Array(sealedPieceBytes());
        const plain = new Uint8Array(pieceBytes());
        const s = new SealStream();
        let t = performance.now();
        for (let i = 0; i < pieces; i++) s.sealInto(piece, i + 1 === pieces, out);
        const digest = s.finish();
        const seal = performance.now() - t;
        // Every piece is the same plaintext under one key, but chunk numbers differ: open a
        // second stream's pieces as they are sealed, timing the opening alone.
        const s2 = new SealStream();
        const o = new OpenStream(s2.key(), pieces * pieceBytes(), new Uint8Array(32));
        let open = 0;
        for (let i = 0; i < pieces; i++) {
          const n = s2.sealInto(piece, i + 1 === pieces, out);
          t = performance.now();
          o.openInto(out.subarray(0, n), plain);
          open += performance.now() - t;
        }
        postMessage({ mb: pieces * pieceBytes() / 1e6, seal, open });
      };`;
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
    return new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage(null);
    });
  }, [glue, wasm, MIB]);
  const rate = (ms) => (result.mb / ms * 1000).toFixed(0);
  console.log(`worker wasm (${process.env.WASM ?? "as built, with SIMD"}): seal ${rate(result.seal)} MB/s, open ${rate(result.open)} MB/s (${result.mb.toFixed(0)} MB)`);
} finally {
  await browser.close();
  await relay.stop();
  relay.cleanup();
}
