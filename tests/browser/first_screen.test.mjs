import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startRelay, launchBrowser, newPage, artifacts, accessibilityProblems } from "./harness.mjs";

let relay, browser;
before(async () => {
  relay = await startRelay();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await relay?.stop();
  relay?.cleanup();
});

test("the app loads from the relay and shows the first screen without errors", async () => {
  const { page, errors, context } = await newPage(browser);
  await page.goto(relay.url + "/");
  await page.getByRole("heading", { name: "Sotto", level: 1 }).waitFor();
  await page.getByRole("heading", { name: "Create your identity" }).waitFor();
  const name = page.getByLabel("Display name");
  await name.waitFor();
  assert.deepEqual(await accessibilityProblems(page), []);
  await page.screenshot({ path: join(artifacts, "first-screen.png"), fullPage: true });

  // An empty name is refused with a plain-words message.
  await page.getByRole("button", { name: "Create your identity" }).click();
  await page.getByText("Please enter a name people will recognise.").waitFor();

  await name.fill("Ada");
  await name.press("Enter");
  // Keys are made in the browser; the new identity logs in to the relay and shows its chats.
  await page.getByText("No chats yet").waitFor();
  await page.getByTestId("connection").getByText("Online").waitFor();
  await page.getByRole("link", { name: "Settings" }).click();
  const fp = await page.locator(".key code").textContent();
  assert.match(fp, /^([0-9A-F]{4} ){7}[0-9A-F]{4}$/);
  await page.screenshot({ path: join(artifacts, "first-screen-created.png"), fullPage: true });

  assert.deepEqual(errors, [], "console errors: " + errors.join("\n"));
  await context.close();
});

test("phone-sized dark mode renders the first screen", async () => {
  const { page, errors, context } = await newPage(browser, {
    viewport: { width: 375, height: 740 }, colorScheme: "dark",
  });
  await page.goto(relay.url + "/");
  await page.getByRole("heading", { name: "Create your identity" }).waitFor();
  await page.screenshot({ path: join(artifacts, "first-screen-phone-dark.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), []);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the first screen does not shift on a desktop viewport (CLS below 0.1)", async () => {
  const { page, errors, context } = await newPage(browser, { viewport: { width: 1350, height: 940 } });
  await page.addInitScript(() => {
    window.__cls = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
    }).observe({ type: "layout-shift", buffered: true });
  });
  await page.goto(relay.url + "/");
  await page.getByRole("heading", { name: "Create your identity" }).waitFor();
  // Shifts are reported after the frame that caused them; let a few frames pass.
  await page.waitForTimeout(500);
  const cls = await page.evaluate(() => window.__cls);
  assert.ok(cls < 0.1, `cumulative layout shift ${cls}`);
  assert.deepEqual(errors, []);
  await context.close();
});
