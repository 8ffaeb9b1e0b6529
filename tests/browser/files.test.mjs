// Files in the real app: two people in two browser contexts and the real relay. A photo (its
// thumbnail at once, the full image on a tap), a 300 MiB file saved byte for byte, an upload
// cancelled, another carried through a relay killed mid-upload, a voice message from Chromium's
// fake microphone, a photo in a group; and no plaintext in the relay's data or log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { createWriteStream, createReadStream, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { startRelay, launchBrowser, newPage, artifacts, createIdentity, haystack, accessibilityProblems } from "./harness.mjs";

const MARKER = "FILE-PLAINTEXT-MARKER-kestrel";
const BIG = 300 << 20;
let relay, browser, ada, bo, work, big, bigSha;
const shot = (p, name) => p.page.screenshot({ path: join(artifacts, `files-${name}.png`) });
const port = 20000 + Math.floor(Math.random() * 20000);

/** A file of `size` bytes: the marker again and again with a counter, so no two pieces match. */
async function makeFile(path, size) {
  const out = createWriteStream(path);
  const hash = createHash("sha256");
  const block = 1 << 20;
  for (let at = 0, n = 0; at < size; at += block, n++) {
    const piece = Buffer.alloc(Math.min(block, size - at), `${MARKER} piece ${n} `);
    hash.update(piece);
    if (!out.write(piece)) await new Promise((r) => out.once("drain", r));
  }
  await new Promise((r) => out.end(r));
  return hash.digest("hex");
}

const sha256 = (path) => new Promise((resolve) => {
  const h = createHash("sha256");
  createReadStream(path).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex")));
});

before(async () => {
  work = mkdtempSync(join(tmpdir(), "sotto-files-"));
  big = join(work, "big-archive.bin");
  bigSha = await makeFile(big, BIG);
  relay = await startRelay({ listen: `127.0.0.1:${port}` });
  browser = await launchBrowser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]);
  ada = await newPage(browser, { viewport: { width: 1100, height: 800 } });
  bo = await newPage(browser, { viewport: { width: 1100, height: 800 }, acceptDownloads: true });
});
after(async () => {
  await browser?.close();
  await relay?.stop();
  relay?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const attach = (p, files) => p.page.getByTestId("attach").setInputFiles(files);
const messages = (p) => p.page.getByTestId("message");

/** A JPEG drawn in the page whose EXIF block names a place (`GPS_MARKER`). */
const GPS_MARKER = "GPS-51.5072N-0.1276W-MARKER";
async function jpegWithExif(p, width, height) {
  const data = await p.page.evaluate(async ([w, h]) => {
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext("2d");
    g.fillStyle = "#3a6ea5"; g.fillRect(0, 0, w, h);
    const b = await c.convertToBlob({ type: "image/jpeg", quality: 0.9 });
    return Array.from(new Uint8Array(await b.arrayBuffer()));
  }, [width, height]);
  const payload = Buffer.concat([Buffer.from("Exif\0\0"), Buffer.from(GPS_MARKER)]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);
  const jpeg = Buffer.from(data);
  return Buffer.concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
}

/** A PNG drawn in the page: `width`×`height`, with the marker written on it. */
async function png(p, width, height) {
  const data = await p.page.evaluate(async ([w, h, marker]) => {
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext("2d");
    g.fillStyle = "#2f5d50"; g.fillRect(0, 0, w, h);
    g.fillStyle = "#e0a43a"; g.beginPath(); g.arc(w / 2, h / 2, h / 3, 0, 7); g.fill();
    g.fillStyle = "#fff"; g.font = "40px sans-serif"; g.fillText(marker, 20, 60);
    const b = await c.convertToBlob({ type: "image/png" });
    return Array.from(new Uint8Array(await b.arrayBuffer()));
  }, [width, height, MARKER]);
  return Buffer.from(data);
}

test("Ada and Bo connect", async () => {
  await ada.page.goto(relay.url + "/");
  await createIdentity(ada.page, "Ada");
  await ada.page.goto(relay.url + "/#/new");
  await ada.page.getByRole("button", { name: "Create invite link" }).click();
  const link = await ada.page.getByTestId("invite-link").inputValue();
  await bo.page.goto(link);
  await createIdentity(bo.page, "Bo");
  await bo.page.getByRole("button", { name: "Accept" }).click();
  await bo.page.getByRole("heading", { name: "Ada", level: 2 }).waitFor();
  await ada.page.goto(relay.url + "/#/");
  await ada.page.getByTestId("chat-row").filter({ hasText: "Bo" }).click();
});

test("a photo: its thumbnail shows at once for Bo, the full image on a tap", async () => {
  const chosen = Date.now();
  await attach(ada, { name: "harbour.png", mimeType: "image/png", buffer: await png(ada, 1600, 1200) });
  const photo = bo.page.getByTestId("photo");
  await photo.waitFor({ timeout: 20000 });
  console.log(`photo chosen → thumbnail shown to the recipient: ${Date.now() - chosen} ms`);
  const thumb = await photo.locator("img").evaluate((i) => ({ w: i.naturalWidth, src: i.src.slice(0, 23) }));
  assert.equal(thumb.src, "data:image/jpeg;base64,");
  assert.ok(thumb.w > 0 && thumb.w <= 320, `thumbnail ${thumb.w} px wide`);
  await shot(bo, "1-photo-thumbnail");
  await photo.click();
  const viewer = bo.page.getByTestId("viewer");
  await viewer.waitFor();
  const full = await viewer.locator("img").evaluate(async (i) => { await i.decode(); return [i.naturalWidth, i.naturalHeight]; });
  assert.deepEqual(full, [1600, 1200], "the whole image, opened");
  await shot(bo, "2-photo-viewer");
  assert.deepEqual(await accessibilityProblems(bo.page), []);
  await bo.page.getByTestId("close-viewer").click();
  await viewer.waitFor({ state: "detached" });
});

test("a photo leaves without its metadata (where it was taken)", async () => {
  const photo = await jpegWithExif(ada, 800, 600);
  assert.ok(photo.includes(GPS_MARKER), "the file picked names a place");
  // What is typed when a file is attached goes with it, as its caption.
  await ada.page.getByRole("textbox", { name: "Message", exact: true }).fill("the harbour at dusk");
  await attach(ada, { name: "holiday.jpg", mimeType: "image/jpeg", buffer: photo });
  await bo.page.getByTestId("photo").nth(1).waitFor({ timeout: 20000 });
  await bo.page.getByTestId("message").filter({ has: bo.page.getByTestId("photo") }).getByText("the harbour at dusk").waitFor();
  assert.equal(await ada.page.getByRole("textbox", { name: "Message", exact: true }).inputValue(), "", "the composer is empty again");
  await bo.page.getByTestId("photo").nth(1).click();
  await bo.page.getByTestId("viewer").waitFor();
  // The opened copy, read where the worker wrote it (the page's own policy forbids fetching
  // its blob: URL, rightly).
  const received = await bo.page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("opened");
    let newest = null;
    for await (const handle of dir.values()) {
      const file = await handle.getFile();
      if (!newest || file.lastModified >= newest.lastModified) newest = file;
    }
    return Array.from(new Uint8Array(await newest.arrayBuffer()));
  });
  const bytes = Buffer.from(received);
  assert.equal(bytes.readUInt16BE(0), 0xffd8, "still a JPEG");
  assert.equal(bytes.indexOf(GPS_MARKER), -1, "no trace of the place");
  await bo.page.getByTestId("close-viewer").click();
});

test("a 300 MiB file goes up with progress and comes down byte for byte", async () => {
  const started = Date.now();
  await attach(ada, big);
  const upload = ada.page.getByTestId("upload");
  await upload.waitFor();
  await shot(ada, "3-uploading");
  await bo.page.getByTestId("file").waitFor({ timeout: 120000 });
  const sent = Date.now() - started;
  await upload.waitFor({ state: "detached" });
  assert.match(await bo.page.getByTestId("file").innerText(), /big-archive\.bin · 314\.6 MB/);
  const downloading = Date.now();
  const [download] = await Promise.all([
    bo.page.waitForEvent("download", { timeout: 120000 }),
    bo.page.getByTestId("save").click(),
  ]);
  assert.equal(download.suggestedFilename(), "big-archive.bin");
  const saved = join(work, "saved.bin");
  await download.saveAs(saved);
  const received = Date.now() - downloading;
  console.log(`300 MiB: sealed and uploaded in ${sent} ms, downloaded and opened in ${received} ms`);
  assert.equal(statSync(saved).size, BIG);
  assert.equal(await sha256(saved), bigSha, "the file saved is the file sent");
  rmSync(saved);
});

test("an upload cancelled halfway sends nothing", async () => {
  const before = await messages(bo).count();
  await attach(ada, big);
  const upload = ada.page.getByTestId("upload");
  await upload.getByText(/[1-9]\d? %/).waitFor({ timeout: 60000 });
  await upload.getByTestId("cancel-upload").click();
  await upload.waitFor({ state: "detached" });
  await ada.page.waitForTimeout(1500);
  assert.equal(await messages(bo).count(), before, "nothing reached Bo");
  // The worker stopped and deleted its blob: nothing is half-uploaded at the relay.
  const parts = readdirSync(join(relay.dataDir, "blobs")).filter((f) => f.endsWith(".part"));
  assert.deepEqual(parts, []);
});

test("an upload goes on where it stopped after the relay is killed and restarted", async () => {
  await attach(ada, big);
  const upload = ada.page.getByTestId("upload");
  await upload.getByText(/[2-9]\d %/).waitFor({ timeout: 60000 });
  await relay.stop("SIGKILL");
  relay = await startRelay({ listen: `127.0.0.1:${port}`, dataDir: relay.dataDir });
  const files = bo.page.getByTestId("file");
  await files.nth(1).waitFor({ timeout: 180000 });
  const [download] = await Promise.all([
    bo.page.waitForEvent("download", { timeout: 120000 }),
    files.nth(1).getByTestId("save").click(),
  ]);
  const saved = join(work, "saved-again.bin");
  await download.saveAs(saved);
  assert.equal(await sha256(saved), bigSha, "whole and intact after the restart");
  rmSync(saved);
});

test("a voice message from the microphone plays for Bo, with its waveform and length", async () => {
  await ada.page.getByTestId("record").click();
  await ada.page.getByTestId("recording").waitFor();
  await ada.page.waitForTimeout(2300);
  await shot(ada, "4-recording");
  await ada.page.getByTestId("send-voice").click();
  const voice = bo.page.getByTestId("voice");
  await voice.waitFor({ timeout: 20000 });
  assert.match(await voice.innerText(), /0:0[2-3]/);
  assert.ok(await voice.locator("rect").count() > 10, "a waveform");
  await shot(bo, "5-voice");
  await voice.getByRole("button", { name: /Play voice message/ }).click();
  const player = bo.page.getByTestId("player");
  await player.waitFor();
  const duration = await player.evaluate((a) => new Promise((resolve) => {
    if (a.readyState >= 1 && Number.isFinite(a.duration)) return resolve(a.duration);
    a.onloadedmetadata = () => resolve(a.duration);
    a.ondurationchange = () => Number.isFinite(a.duration) && resolve(a.duration);
  }));
  // (A recorder's WebM often names no length: Infinity then. What matters is that it decodes.)
  assert.ok(duration > 1 || duration === Infinity, `plays (${duration} s)`);
  assert.equal(await player.evaluate((a) => a.error), null, "the browser decodes it");
});

test("files pasted, dropped, or picked several at once each become a message", async () => {
  const before = await bo.page.getByTestId("file").count();
  // Pasted into the composer and dropped on the chat, as the browser hands them over.
  for (const [how, name] of [["paste", "pasted-notes.txt"], ["drop", "dropped-notes.txt"]]) {
    await ada.page.evaluate(([how, name, marker]) => {
      const data = new DataTransfer();
      data.items.add(new File([`${marker} ${name}`], name, { type: "text/plain" }));
      const event = how === "paste"
        ? new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true })
        : new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
      document.querySelector(how === "paste" ? "#composer" : ".messages").dispatchEvent(event);
    }, [how, name, MARKER]);
    await bo.page.getByTestId("file").filter({ hasText: name }).waitFor({ timeout: 20000 });
  }
  await attach(ada, ["a.txt", "b.txt"].map((name) => ({ name, mimeType: "text/plain", buffer: Buffer.from(`${MARKER} ${name}`) })));
  await bo.page.getByTestId("file").filter({ hasText: "b.txt" }).waitFor({ timeout: 20000 });
  assert.equal(await bo.page.getByTestId("file").count(), before + 4);
});

test("a photo and a voice message in a group reach the other member", async () => {
  await ada.page.getByRole("link", { name: "New group" }).click();
  await ada.page.getByLabel("Group name").fill("Photos");
  await ada.page.getByLabel("Bo").check();
  await ada.page.getByRole("button", { name: "Create group" }).click();
  await ada.page.getByRole("heading", { name: "Photos", level: 2 }).waitFor();
  await attach(ada, { name: "group.png", mimeType: "image/png", buffer: await png(ada, 640, 480) });
  await ada.page.getByTestId("record").click();
  await ada.page.getByTestId("recording").waitFor();
  await ada.page.waitForTimeout(1200);
  await ada.page.getByTestId("send-voice").click();
  await bo.page.goto(relay.url + "/#/");
  await bo.page.getByTestId("chat-row").filter({ hasText: "Photos" }).click();
  await bo.page.getByTestId("photo").waitFor({ timeout: 20000 });
  await bo.page.getByTestId("voice").waitFor({ timeout: 20000 });
  await bo.page.getByTestId("voice").getByRole("button", { name: /Play voice message/ }).click();
  await bo.page.getByTestId("player").waitFor();
  await shot(bo, "6-group-photo");
  assert.deepEqual(await accessibilityProblems(bo.page), []);
});

test("the relay's data and log hold no plaintext, and no page erred", async () => {
  const hay = haystack(relay.dataDir, relay.log());
  assert.equal(hay.indexOf(MARKER), -1, "a marker from inside the files");
  assert.ok(hay.length > BIG, "the files' ciphertext is there");
  assert.deepEqual(ada.errors.filter((e) => !/WebSocket|ERR_CONNECTION|Failed to load resource/.test(e)), []);
  assert.deepEqual(bo.errors.filter((e) => !/WebSocket|ERR_CONNECTION|Failed to load resource/.test(e)), []);
});
