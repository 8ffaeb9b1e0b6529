// Channels in the real app: Ada runs a channel, Bo and Cy follow it by its link in their own
// browser contexts; posts reach them with view counts; Bo reports a post; the relay's operator
// opens /admin in a fourth context, sees the post verified and blocks the channel; Bo and Cy
// are told why, live. Screenshots go to test-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startRelay, launchBrowser, newPage, artifacts, createIdentity, haystack, accessibilityProblems } from "./harness.mjs";

const TOKEN = "operator-token-browser-test-5f2e";
const MARKER = "CHANNEL-PLAINTEXT-MARKER-osprey";
let relay, browser, ada, bo, cy, operator;
const shot = (p, name) => p.screenshot({ path: join(artifacts, `channels-${name}.png`) });

before(async () => {
  relay = await startRelay({ args: ["--admin-token", TOKEN] });
  browser = await launchBrowser();
  ada = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  bo = await newPage(browser, { viewport: { width: 1100, height: 760 }, colorScheme: "dark" });
  cy = await newPage(browser, { viewport: { width: 390, height: 760 } });
  operator = await newPage(browser, { viewport: { width: 1000, height: 800 } });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  relay?.cleanup();
});

async function post(p, text) {
  const box = p.page.getByRole("textbox", { name: "Message", exact: true });
  await box.fill(text);
  await box.press("Enter");
}

const bubble = (p, text) => p.page.getByTestId("message").filter({ has: p.page.locator(".text").getByText(text, { exact: true }) });

test("a channel reaches its followers; a reported post is verified and blocked by the operator", async () => {
  await ada.page.goto(relay.url + "/");
  await createIdentity(ada.page, "Ada");
  await ada.page.getByRole("link", { name: "New channel" }).click();
  await ada.page.getByLabel("Channel name").fill("Morning Brief");
  await ada.page.getByLabel("Description (optional)").fill("The news before breakfast");
  await ada.page.getByRole("button", { name: "Create channel" }).click();
  await ada.page.getByRole("heading", { name: "Morning Brief", level: 2 }).waitFor();
  await post(ada, `${MARKER} first edition`);
  await post(ada, "Everyone from the north is a liar");
  await ada.page.locator('[data-testid="message"][data-status="sent"]').filter({ hasText: "Everyone from the north" }).waitFor();
  await ada.page.getByText("About this channel").click();
  const link = await ada.page.getByTestId("channel-link").inputValue();
  assert.match(link, /#\/channel\//);
  await shot(ada.page, "1-owner");

  // Bo and Cy follow by the link, read what was posted before, then live posts.
  for (const [p, name] of [[bo, "Bo"], [cy, "Cy"]]) {
    await p.page.goto(link);
    await createIdentity(p.page, name);
    await p.page.getByRole("heading", { name: "Morning Brief" }).waitFor();
    await p.page.getByText("The news before breakfast").waitFor();
    await p.page.getByRole("button", { name: "Follow" }).click();
    await bubble(p, `${MARKER} first edition`).waitFor();
    await bubble(p, "Everyone from the north is a liar").waitFor();
    // Followers read; they have no composer.
    assert.equal(await p.page.getByRole("textbox", { name: "Message", exact: true }).count(), 0);
  }
  await post(ada, `${MARKER} live`);
  await bubble(bo, `${MARKER} live`).waitFor();
  await bubble(cy, `${MARKER} live`).waitFor();
  // Counts: opening the page asks for them again.
  await bo.page.goto(relay.url + "/#/");
  await bo.page.getByTestId("chat-row").filter({ hasText: "Morning Brief" }).click();
  await bo.page.getByTestId("channel-subscribers").getByText("3 subscribers").waitFor();
  await bubble(bo, `${MARKER} live`).getByTestId("reads").getByText(/views?$/).waitFor();
  await shot(bo.page, "2-follower");
  assert.deepEqual(await accessibilityProblems(bo.page), []);

  // Bo reports the hateful post.
  await bubble(bo, "Everyone from the north is a liar").getByRole("link", { name: "Report" }).click();
  await bo.page.getByTestId("reported-post").getByText("Everyone from the north is a liar").waitFor();
  await bo.page.getByLabel("Why are you reporting it?").fill("Hate against a group of people");
  await shot(bo.page, "3-report");
  await bo.page.getByRole("button", { name: "Send report" }).click();
  await bo.page.getByText("Report sent.").waitFor();

  // The operator: a wrong token opens nothing; the right one shows the post, verified.
  await operator.page.goto(relay.url + "/admin");
  await operator.page.getByLabel("Operator token").fill("not-the-operator-token");
  await operator.page.getByRole("button", { name: "Open" }).click();
  await operator.page.getByText("That token does not open").waitFor();
  await operator.page.getByLabel("Operator token").fill(TOKEN);
  await operator.page.getByRole("button", { name: "Open" }).click();
  const report = operator.page.locator("#reports > li");
  await report.getByText("Verified: published in this channel").waitFor();
  await report.getByText("Everyone from the north is a liar").waitFor();
  await report.getByText("Reason given: Hate against a group of people").waitFor();
  assert.equal(await report.getByText(`${MARKER} first edition`).count(), 0, "only the reported post is readable");
  await shot(operator.page, "4-operator");
  assert.deepEqual(await accessibilityProblems(operator.page), []);
  await report.getByLabel(/Reason for blocking channel/).fill("Hate speech");
  await report.getByRole("button", { name: "Block channel" }).click();
  await operator.page.getByRole("status").getByText("Channel blocked.").waitFor();
  await operator.page.locator("#blocks > li").getByText(/Hate speech/).waitFor();

  // The followers are told, live, with the reason; the owner can no longer post.
  for (const p of [bo, cy]) {
    await p.page.getByTestId("channel-blocked").getByText("blocked by this relay's operator: Hate speech").waitFor();
  }
  await ada.page.getByTestId("channel-blocked").waitFor();
  assert.equal(await ada.page.getByRole("textbox", { name: "Message", exact: true }).count(), 0);
  await shot(cy.page, "5-blocked");

  // The relay stored and logged ciphertext only (the reported post is kept with its key, not
  // opened).
  const hay = haystack(relay.dataDir, relay.log());
  assert.equal(hay.includes(MARKER), false, "plaintext in the relay's data or log");
});
