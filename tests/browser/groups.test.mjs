// Groups in the real app: three people in three browser contexts and the real relay. Ada makes
// a group with her two contacts, everyone writes, each message shows its author; Ada removes
// Cy, who is told and reads nothing after. Screenshots go to test-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startRelay, launchBrowser, newPage, artifacts, createIdentity, haystack, accessibilityProblems, recordNotifications } from "./harness.mjs";

let relay, browser, ada, bo, cy, dee;
const MARKER = "GROUP-PLAINTEXT-MARKER-heron";
const shot = (p, name) => p.screenshot({ path: join(artifacts, `groups-${name}.png`) });

before(async () => {
  relay = await startRelay();
  browser = await launchBrowser();
  ada = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  bo = await newPage(browser, { viewport: { width: 1100, height: 760 }, colorScheme: "dark" });
  cy = await newPage(browser, { viewport: { width: 390, height: 760 } });
  await recordNotifications(bo.page);
  await bo.context.grantPermissions(["notifications"]);
});

const hide = (p, hidden) =>
  p.page.evaluate((h) => { window.__hidden = h; document.dispatchEvent(new Event("visibilitychange")); }, hidden);
after(async () => {
  await browser?.close();
  await relay?.stop();
  relay?.cleanup();
});

async function send(p, text) {
  const box = p.page.getByRole("textbox", { name: "Message", exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** `who` accepts an invite link of Ada's. */
async function befriendAda(who, name) {
  await ada.page.goto(relay.url + "/#/new");
  await ada.page.getByRole("button", { name: "Create invite link" }).click();
  const link = await ada.page.getByTestId("invite-link").inputValue();
  await who.page.goto(link);
  await createIdentity(who.page, name);
  await who.page.getByRole("button", { name: "Accept" }).click();
  await ada.page.goto(relay.url + "/#/");
  await ada.page.getByTestId("chat-row").filter({ hasText: name }).waitFor();
}

/** The message bubble with exactly `text`. */
const bubble = (p, text) => p.page.getByTestId("message").filter({ has: p.page.locator(".text").getByText(text, { exact: true }) });

test("Ada makes a group with two contacts; everyone reads everyone, under their names", async () => {
  await ada.page.goto(relay.url + "/");
  await createIdentity(ada.page, "Ada");
  await befriendAda(bo, "Bo");
  await befriendAda(cy, "Cy");

  await ada.page.getByRole("link", { name: "New group" }).click();
  await ada.page.getByLabel("Group name").fill("Book club");
  await ada.page.getByLabel("Description (optional)").fill("One book a month, Tuesdays at eight");
  await ada.page.getByLabel("Bo").check();
  await ada.page.getByLabel("Cy").check();
  await shot(ada.page, "1-new-group");
  await ada.page.getByRole("button", { name: "Create group" }).click();
  await ada.page.getByRole("heading", { name: "Book club", level: 2 }).waitFor();
  await ada.page.getByTestId("group-members").getByText("3 members").waitFor();

  for (const p of [bo, cy]) {
    await p.page.goto(relay.url + "/#/");
    await p.page.getByTestId("chat-row").filter({ hasText: "Book club" }).click();
    await p.page.getByRole("heading", { name: "Book club", level: 2 }).waitFor();
  }
  // The timeline says what happened, in each person's words.
  await ada.page.getByTestId("notice").getByText("You added Bo").waitFor();
  await ada.page.getByTestId("notice").getByText("You changed the group's description").waitFor();
  await cy.page.getByRole("link", { name: "Group info" }).click();
  assert.equal(await cy.page.getByTestId("group-description").innerText(), "One book a month, Tuesdays at eight");
  await cy.page.getByRole("link", { name: "Back to the group" }).click();
  await bo.page.getByTestId("notice").getByText("Ada added you").waitFor();
  await send(ada, `${MARKER} welcome, both`);
  for (const p of [bo, cy]) {
    const b = bubble(p, `${MARKER} welcome, both`);
    await b.waitFor();
    assert.equal(await b.getByTestId("author").textContent(), "Ada");
  }
  // Both have the group open: Ada's message counts them as they read it.
  await bubble(ada, `${MARKER} welcome, both`).getByTestId("reads").getByText("Read by 2 of 2").waitFor();
  await send(bo, "Thanks Ada!");
  await bubble(ada, "Thanks Ada!").getByTestId("author").getByText("Bo").waitFor();
  // Cy is not Bo's contact: she sees him under a placeholder, never a name he chose.
  const boForCy = await bubble(cy, "Thanks Ada!").getByTestId("author").textContent();
  assert.notEqual(boForCy, "Bo");
  assert.ok(boForCy.length > 0);
  await send(cy, "Hello from Cy");
  await bubble(ada, "Hello from Cy").waitFor();
  await bubble(bo, "Hello from Cy").waitFor();
  await shot(ada.page, "2-ada-chat");
  await shot(bo.page, "2-bo-chat-dark");
  await shot(cy.page, "2-cy-chat-phone");

  // The group's screens pass the accessibility checks, light and dark.
  for (const p of [ada, bo]) {
    assert.deepEqual(await accessibilityProblems(p.page), []);
  }
});

test("a group notifies in the background until it is muted", async () => {
  await bo.page.getByRole("link", { name: "Settings" }).click();
  await bo.page.getByLabel("Desktop notifications while Sotto is in the background").click();
  await bo.page.waitForFunction(() => !document.querySelectorAll("input[type=checkbox]")[1].disabled);
  await bo.page.getByTestId("chat-row").filter({ hasText: "Book club" }).click();
  await hide(bo, true);
  await send(ada, "anyone for Thursday?");
  await bo.page.waitForFunction(() => window.__notes.length === 1);
  assert.match((await bo.page.evaluate(() => window.__notes))[0][0], /Ada/);
  await hide(bo, false);
  await bo.page.getByRole("link", { name: "Group info" }).click();
  await bo.page.getByLabel("Mute notifications").check();
  await bo.page.getByRole("link", { name: "Back to the group" }).click();
  await hide(bo, true);
  await send(ada, "or Friday?");
  await bubble(bo, "or Friday?").waitFor();
  await bo.page.waitForTimeout(300);
  assert.equal(await bo.page.evaluate(() => window.__notes.length), 1, "a muted group notified");
  await hide(bo, false);
});

test("Ada removes Cy: Cy is told and reads nothing after; Bo reads on", async () => {
  await ada.page.getByRole("link", { name: "Group info" }).click();
  await ada.page.getByRole("heading", { name: "Members (3)" }).waitFor();
  await shot(ada.page, "3-group-info");
  assert.deepEqual(await accessibilityProblems(ada.page), []);
  // Admins rename the group and promote a member; everyone sees it.
  await ada.page.getByLabel("Group name").fill("Book club (Tuesdays)");
  await ada.page.getByRole("button", { name: "Rename" }).click();
  await ada.page.getByRole("heading", { name: "Book club (Tuesdays)", level: 2 }).waitFor();
  await bo.page.getByTestId("notice").getByText("Ada renamed the group \u201cBook club (Tuesdays)\u201d").waitFor();
  await bo.page.getByRole("heading", { name: "Book club (Tuesdays)", level: 2 }).waitFor();
  await ada.page.getByRole("button", { name: "Make Bo an admin" }).click();
  await ada.page.getByRole("button", { name: "Make Bo a member" }).waitFor();
  await bo.page.getByTestId("notice").getByText("Ada made you an admin").waitFor();
  await ada.page.getByRole("button", { name: "Remove Cy" }).click();
  await ada.page.getByRole("heading", { name: "Members (2)" }).waitFor();
  await cy.page.getByTestId("group-gone").waitFor();
  await cy.page.getByTestId("notice").getByText("Ada removed you").waitFor();
  await shot(cy.page, "4-cy-removed");
  assert.equal(await cy.page.getByRole("textbox", { name: "Message", exact: true }).count(), 0);

  await ada.page.getByRole("link", { name: "Back to the group" }).click();
  await send(ada, `${MARKER} just the two of us`);
  await bubble(bo, `${MARKER} just the two of us`).waitFor();
  // Give Cy's tab time to receive anything it could.
  await cy.page.waitForTimeout(1500);
  assert.equal(await bubble(cy, `${MARKER} just the two of us`).count(), 0);
  await bo.page.getByTestId("group-members").getByText("2 members").waitFor();
});

test("Dee, nobody's contact, joins by a group link once Ada lets her in", async () => {
  dee = await newPage(browser, { viewport: { width: 390, height: 760 } });
  await ada.page.getByRole("link", { name: "Group info" }).click();
  await ada.page.getByLabel("Admins approve each request").check();
  await ada.page.getByLabel("In a day").check();
  await ada.page.getByRole("button", { name: "Create invite link" }).click();
  await shot(ada.page, "5-group-link");
  const link = await ada.page.getByTestId("group-link").inputValue();
  assert.match(link, /\/#\/join\//);
  await ada.page.getByText("used 0 times, expires in 1 day, admins approve each request").waitFor();
  await shot(ada.page, "5-group-link");
  assert.deepEqual(await accessibilityProblems(ada.page), []);

  await dee.page.goto(link);
  await createIdentity(dee.page, "Dee");
  await dee.page.getByRole("heading", { name: "Join Book club (Tuesdays)?" }).waitFor();
  assert.deepEqual(await accessibilityProblems(dee.page), []);
  await dee.page.getByRole("button", { name: "Ask to join" }).click();
  await dee.page.getByTestId("join-waiting").waitFor();
  await shot(dee.page, "6-dee-asked");

  await ada.page.getByRole("button", { name: "Let Dee in" }).click();
  await ada.page.getByRole("heading", { name: "Members (3)" }).waitFor();
  await ada.page.getByText("used 1 times, expires in 1 day, admins approve each request").waitFor();
  await dee.page.goto(relay.url + "/#/");
  await dee.page.getByTestId("chat-row").filter({ hasText: "Book club (Tuesdays)" }).click();
  await send(dee, `${MARKER} hello, I am Dee`);
  await ada.page.getByRole("link", { name: "Back to the group" }).click();
  const fromDee = bubble(ada, `${MARKER} hello, I am Dee`);
  await fromDee.waitFor();
  assert.equal(await fromDee.locator(".author").innerText(), "Dee", "the name she gave when asking");
  await bubble(bo, `${MARKER} hello, I am Dee`).waitFor();
  await send(bo, "welcome Dee");
  await bubble(dee, "welcome Dee").waitFor();
  await shot(dee.page, "7-dee-in");

  // Dee is nobody's contact: her safety number shows from the group's member list.
  await ada.page.getByRole("link", { name: "Group info" }).click();
  await ada.page.getByRole("link", { name: "Safety number with Dee" }).click();
  await ada.page.getByRole("heading", { name: "Safety number with Dee" }).waitFor();
  const number = await ada.page.getByTestId("safety-number").innerText();
  await dee.page.goto(relay.url + "/#/");
  await dee.page.getByTestId("chat-row").filter({ hasText: "Book club (Tuesdays)" }).click();
  await dee.page.getByRole("link", { name: "Group info" }).click();
  // Ada and Bo are no contacts of Dee's (she sees placeholder names): one of the two numbers
  // she sees is the one Ada sees.
  const seen = [];
  for (const i of [0, 1]) {
    await dee.page.getByRole("link", { name: /^Safety number with / }).nth(i).click();
    seen.push(await dee.page.getByTestId("safety-number").innerText());
    if (i === 0) assert.deepEqual(await accessibilityProblems(dee.page), []);
    await dee.page.getByRole("link", { name: "Back to the group" }).click();
  }
  assert.ok(seen.includes(number), "the same digits on both sides");
  await ada.page.getByRole("link", { name: "Back to the group" }).click();

  // Closing the link: it is gone from the list.
  await ada.page.getByRole("button", { name: "Close link" }).click();
  assert.equal(await ada.page.getByTestId("group-link").count(), 0);
});

test("Bo reloads: the group, its history and its notices are still there", async () => {
  await bo.page.reload();
  await bo.page.getByTestId("chat-row").filter({ hasText: "Book club (Tuesdays)" }).click();
  await bubble(bo, `${MARKER} welcome, both`).waitFor();
  await bubble(bo, `${MARKER} hello, I am Dee`).waitFor();
  await bo.page.getByTestId("notice").getByText("Ada made you an admin").waitFor();
  await send(bo, "back after a reload");
  await ada.page.getByRole("link", { name: "Back to the group" }).click();
  await bubble(ada, "back after a reload").waitFor();
});

test("no group plaintext reached the relay's data dir or log, and no page logged an error", async () => {
  const hay = haystack(relay.dataDir, relay.log());
  assert.equal(hay.indexOf(MARKER), -1);
  for (const p of [ada, bo, cy, dee]) {
    const unexpected = p.errors.filter((e) => !/WebSocket|ERR_CONNECTION/.test(e));
    assert.deepEqual(unexpected, []);
  }
});
