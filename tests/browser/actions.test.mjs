// What people do with messages in the real app, two people in two browser contexts and the
// real relay: replies, edits, reactions and deletions for everyone cross to the other side; a
// disappearing message goes from both screens and both stores; search finds messages across
// chats after a reload; a forwarded message and an exported chat; a contact whose key is new
// is warned about before anything is sent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { startRelay, launchBrowser, newPage, artifacts, befriend, createIdentity, haystack, accessibilityProblems } from "./harness.mjs";

let relay, browser, ada, bo, work, camera;
const shot = (p, name) => p.page.screenshot({ path: join(artifacts, `actions-${name}.png`) });
const SECRET = "SELF-DESTRUCT-MARKER-osprey";

before(async () => {
  relay = await startRelay();
  // The fake camera plays this file, read when a capture starts: the test writes into it what
  // the camera is to see.
  work = mkdtempSync(join(tmpdir(), "sotto-actions-"));
  camera = join(work, "camera.y4m");
  writeFileSync(camera, y4m(new Uint8Array(640 * 480 * 4).fill(255), 640, 480));
  browser = await launchBrowser([
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${camera}`,
  ]);
  ada = await newPage(browser, { viewport: { width: 1100, height: 800 }, acceptDownloads: true });
  bo = await newPage(browser, { viewport: { width: 1100, height: 800 } });
  await befriend(relay, ada, bo);
});
after(async () => {
  await browser?.close();
  await relay?.stop();
  relay?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** A Y4M video (what Chromium's fake camera plays) of one RGBA frame, a few times over. */
function y4m(rgba, w, h) {
  const y = Buffer.alloc(w * h), u = Buffer.alloc((w / 2) * (h / 2)), v = Buffer.alloc((w / 2) * (h / 2));
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    y[i] = Math.round(0.257 * r + 0.504 * g + 0.098 * b + 16);
  }
  for (let j = 0; j < h / 2; j++) {
    for (let i = 0; i < w / 2; i++) {
      const p = 4 * ((2 * j) * w + 2 * i);
      const [r, g, b] = [rgba[p], rgba[p + 1], rgba[p + 2]];
      u[j * (w / 2) + i] = Math.round(-0.148 * r - 0.291 * g + 0.439 * b + 128);
      v[j * (w / 2) + i] = Math.round(0.439 * r - 0.368 * g - 0.071 * b + 128);
    }
  }
  const frame = Buffer.concat([Buffer.from("FRAME\n"), y, u, v]);
  return Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${h} F10:1 Ip A1:1 C420jpeg\n`), frame, frame, frame]);
}

/** The QR code on `p`'s page as a camera would film it: drawn at 640×480, RGBA. */
async function filmQr(p) {
  const svg = await p.page.locator("svg.qr").evaluate((e) => e.outerHTML);
  const blank = await browser.newPage();
  try {
    return await blank.evaluate(async (svg) => {
      const img = new Image();
      img.src = "data:image/svg+xml;base64," + btoa(svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"'));
      await img.decode();
      const c = new OffscreenCanvas(640, 480);
      const g = c.getContext("2d");
      g.fillStyle = "#ddd"; g.fillRect(0, 0, 640, 480);
      g.drawImage(img, 140, 60, 360, 360);
      return Array.from(g.getImageData(0, 0, 640, 480).data);
    }, svg);
  } finally {
    await blank.close();
  }
}

async function send(p, text) {
  const box = p.page.getByRole("textbox", { name: "Message", exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** The bubble whose words are exactly `text`. */
const bubble = (p, text) => p.page.getByTestId("message").filter({ has: p.page.locator(".text").getByText(text, { exact: true }) });

/** Opens the menu of the bubble with `text` and picks `item`. */
async function act(p, text, item) {
  const b = bubble(p, text);
  await b.getByTestId("message-menu").click();
  await b.getByRole(item.startsWith("React") ? "button" : "menuitem", { name: item }).click();
}

/** How many message records the page's store holds (names are keyed, kinds are not). */
const messageRecords = (p) => p.page.evaluate(() => new Promise((resolve) => {
  const open = indexedDB.open("sotto");
  open.onsuccess = () => {
    const keys = open.result.transaction("records").objectStore("records").getAllKeys();
    keys.onsuccess = () => { resolve(keys.result.filter((n) => n.startsWith("msg/")).length); open.result.close(); };
  };
}));

test("a reply, an edit, a reaction and a deletion for everyone reach the other side", async () => {
  // While Ada writes, Bo's chat says so; her message ends it.
  await ada.page.getByRole("textbox", { name: "Message", exact: true }).pressSequentially("Lunch");
  await bo.page.getByTestId("chat-status").getByText("writing…").waitFor();
  await send(ada, "Lunch at noon?");
  await bo.page.getByTestId("chat-status").getByText("Not verified").waitFor();
  await bubble(bo, "Lunch at noon?").waitFor();

  // Bo answers it: his reply quotes it on both sides, and the quote leads back to it.
  await act(bo, "Lunch at noon?", "Reply");
  await bo.page.getByTestId("composing").getByText("Lunch at noon?").waitFor();
  await send(bo, "Yes, at the pier");
  const reply = bubble(ada, "Yes, at the pier");
  await reply.getByTestId("quote").getByText("Lunch at noon?").waitFor();
  await reply.getByTestId("quote").click();
  await ada.page.locator(".bubble.found").filter({ hasText: "Lunch at noon?" }).waitFor();

  // Ada changes her words: Bo sees the new ones, marked edited, and so does the quote.
  await act(ada, "Lunch at noon?", "Edit");
  assert.equal(await ada.page.getByRole("textbox", { name: "Message", exact: true }).inputValue(), "Lunch at noon?");
  await send(ada, "Lunch at one?");
  await bubble(bo, "Lunch at one?").getByTestId("edited").waitFor();
  await bubble(bo, "Yes, at the pier").getByTestId("quote").getByText("Lunch at one?").waitFor();
  assert.equal(await bubble(bo, "Lunch at noon?").count(), 0);

  // A menu opened and left with Escape does nothing.
  await bubble(bo, "Lunch at one?").getByTestId("message-menu").click();
  await bo.page.getByRole("menuitem", { name: "Reply" }).waitFor();
  await bo.page.keyboard.press("Escape");
  await bo.page.getByRole("menuitem").first().waitFor({ state: "detached", timeout: 2000 });

  // Bo reacts; Ada sees it under her message.
  await act(bo, "Lunch at one?", "React with 👍");
  await bubble(ada, "Lunch at one?").getByTestId("reactions").getByText("👍 1").waitFor();
  await shot(ada, "reply-edit-reaction");

  // Ada deletes a message for everyone: Bo's app takes its words away.
  await send(ada, "oops, wrong chat");
  await bubble(bo, "oops, wrong chat").waitFor();
  await act(ada, "oops, wrong chat", "Delete for everyone");
  await bo.page.getByTestId("deleted").waitFor();
  assert.equal(await bubble(bo, "oops, wrong chat").count(), 0);
  assert.equal(await bubble(ada, "oops, wrong chat").count(), 0);
  // Still so after a reload.
  await bo.page.reload();
  await bubble(bo, "Lunch at one?").getByTestId("edited").waitFor();
  await bo.page.getByTestId("deleted").waitFor();
  assert.deepEqual(await accessibilityProblems(bo.page), []);
});

test("a disappearing message goes from both screens and both stores once read", async () => {
  // Ada sets a 5-second timer: both chats say so and wear the mark.
  await ada.page.getByTestId("chat-menu").click();
  await ada.page.getByTestId("timer").selectOption("5");
  await ada.page.getByTestId("notice").filter({ hasText: "You set messages to disappear 5s after they are read" }).waitFor();
  await bo.page.getByTestId("notice").filter({ hasText: "Ada set messages to disappear 5s after they are read" }).waitFor();
  await bo.page.getByTestId("secret-mark").getByText("⏱ 5s").waitFor();
  await ada.page.keyboard.press("Escape");

  const before = await messageRecords(bo);
  await send(ada, SECRET);
  // Bo has the chat open: it is read on arrival, and its countdown shows.
  await bubble(bo, SECRET).getByTestId("expiry").waitFor();
  await shot(bo, "disappearing");
  assert.equal(await messageRecords(bo), before + 1);
  await bubble(bo, SECRET).waitFor({ state: "detached", timeout: 15_000 });
  await bubble(ada, SECRET).waitFor({ state: "detached", timeout: 15_000 });
  // Its record is deleted from Bo's store, and it does not come back with a reload.
  assert.equal(await messageRecords(bo), before);
  for (const p of [ada, bo]) {
    await p.page.reload();
    await p.page.getByTestId("secret-mark").waitFor();
    assert.equal(await bubble(p, SECRET).count(), 0);
  }
  // The relay held it only as ciphertext.
  assert.ok(!haystack(relay.dataDir, relay.log()).includes(SECRET), "the relay saw the words");

  await ada.page.getByTestId("chat-menu").click();
  await ada.page.getByTestId("timer").selectOption("off");
  await bo.page.getByTestId("notice").filter({ hasText: "Ada turned off disappearing messages" }).waitFor();
  await ada.page.keyboard.press("Escape");
});

test("search finds messages across chats after a reload; a message forwards; a chat exports", async () => {
  // A group of two beside the direct chat.
  await ada.page.getByRole("link", { name: "New group" }).click();
  await ada.page.getByLabel("Group name").fill("Walkers");
  await ada.page.getByLabel("Bo").check();
  await ada.page.getByRole("button", { name: "Create group" }).click();
  await send(ada, "Meet at the LIGHTHOUSE at eight");
  await bo.page.getByTestId("chat-row").filter({ hasText: "Ada" }).click();
  await send(bo, "The lighthouse keeper waves");
  await bubble(ada, "Meet at the LIGHTHOUSE at eight").waitFor();

  await ada.page.reload();
  await ada.page.getByTestId("search").fill("lightho");
  const results = ada.page.getByTestId("result");
  await results.nth(1).waitFor();
  assert.equal(await results.count(), 2);
  assert.match(await results.nth(0).innerText(), /Bo[\s\S]*The lighthouse keeper waves/);
  assert.match(await results.nth(1).innerText(), /Walkers[\s\S]*Meet at the LIGHTHOUSE/);
  await shot(ada, "search");
  await results.nth(0).click();
  await ada.page.locator(".bubble.found").filter({ hasText: "The lighthouse keeper waves" }).waitFor();

  // Forwarded to the group, it arrives there on Bo's side too.
  await act(ada, "The lighthouse keeper waves", "Forward");
  await ada.page.getByTestId("forward").getByRole("button", { name: "Walkers" }).click();
  await bubble(ada, "The lighthouse keeper waves").waitFor();
  await bo.page.getByTestId("chat-row").filter({ hasText: "Walkers" }).click();
  await bubble(bo, "The lighthouse keeper waves").waitFor();

  // The direct chat, exported as text.
  await ada.page.getByTestId("chat-row").filter({ hasText: "Bo" }).click();
  await ada.page.getByTestId("chat-menu").click();
  const [download] = await Promise.all([ada.page.waitForEvent("download"), ada.page.getByTestId("export").click()]);
  const text = readFileSync(await download.path(), "utf8");
  assert.match(text, /Sotto chat: Bo/);
  assert.match(text, /\] You: Lunch at one\? \(edited\)/);
  assert.match(text, /\] Bo: The lighthouse keeper waves/);
  assert.match(text, /\(deleted\)/);
  assert.ok(!text.includes(SECRET), "a disappeared message is not exported");
});

test("scanning the other side's code verifies them; someone else's code warns", async () => {
  const address = async (p, name) =>
    (await p.page.getByTestId("chat-row").filter({ hasText: name }).first().getAttribute("href")).split("/").pop();
  await ada.page.goto(`${relay.url}/#/`);
  await bo.page.goto(`${relay.url}/#/`);
  const [adaAt, boAt] = [await address(bo, "Ada"), await address(ada, "Bo")];

  // First the camera films a code that is not their safety number (an invite link's).
  await ada.page.goto(`${relay.url}/#/new`);
  await ada.page.getByRole("button", { name: "Create invite link" }).click();
  writeFileSync(camera, y4m(await filmQr(ada), 640, 480));
  await bo.page.goto(`${relay.url}/#/safety/${adaAt}`);
  await bo.page.getByTestId("scan").click();
  await bo.page.locator(".toast").getByText(/does not match your safety number with Ada/).waitFor({ timeout: 20_000 });
  assert.match(await bo.page.getByTestId("verified").innerText(), /Mark as verified/);

  // Then Ada's safety-number code: Bo's app reads it, it matches, Ada is verified.
  await ada.page.goto(`${relay.url}/#/safety/${boAt}`);
  writeFileSync(camera, y4m(await filmQr(ada), 640, 480));
  await bo.page.getByTestId("scan").click();
  await bo.page.getByTestId("scanner").locator("video").waitFor();
  await shot(bo, "scanning");
  await bo.page.locator(".toast").getByText("The codes match: Ada is verified.").waitFor({ timeout: 20_000 });
  assert.match(await bo.page.getByTestId("verified").innerText(), /Verified ✓/);
  await bo.page.goto(`${relay.url}/#/chat/${adaAt}`);
  assert.equal(await bo.page.getByTestId("chat-status").innerText(), "Verified ✓");
});

test("a contact who starts over with a new key is a warning first, and nothing is sent until answered", async () => {
  // Bo starts over in a new browser (no backup): a new key under the same name.
  const bo2 = await newPage(browser, { viewport: { width: 1100, height: 800 } });
  await ada.page.goto(relay.url + "/#/new");
  await ada.page.getByRole("button", { name: "Create invite link" }).click();
  const link = await ada.page.getByTestId("invite-link").inputValue();
  await bo2.page.goto(relay.url + "/");
  await createIdentity(bo2.page, "Bo");
  await bo2.page.goto(link);
  await bo2.page.getByRole("button", { name: "Accept" }).click();
  await bo2.page.getByRole("textbox", { name: "Message", exact: true }).waitFor();
  await send(bo2, "It's me, on a new laptop");

  await ada.page.goto(relay.url + "/#/");
  const rows = ada.page.getByTestId("chat-row").filter({ hasText: "Bo" });
  await rows.nth(1).waitFor();
  await ada.page.getByTestId("chat-row").filter({ hasText: "It's me, on a new laptop" }).click();
  const warning = ada.page.getByTestId("key-warning");
  await warning.waitFor();
  assert.match(await warning.innerText(), /already have a contact named Bo with a different key/);
  // No composer until Ada answers; the safety number is not verified.
  assert.equal(await ada.page.getByRole("textbox", { name: "Message", exact: true }).count(), 0);
  assert.equal(await ada.page.getByTestId("chat-status").innerText(), "Not verified");
  await shot(ada, "key-warning");
  await warning.getByTestId("accept-key").click();
  await send(ada, "Welcome back, Bo");
  await bubble(bo2, "Welcome back, Bo").waitFor();
  assert.equal(await ada.page.getByTestId("key-warning").count(), 0);
});
