// Drives the console in headless Chromium, as a person would: sign in,
// create an endpoint with the form, watch a delivery appear without
// reloading, watch a dead letter appear, redeliver it, see it delivered;
// pause, resume, test, redeliver all, sign out.
//
// Run by tests/console_browser.rs, which starts the server and a scripted
// loopback receiver and passes: SERVER_URL, TOKEN, RECEIVER_URL, SHOTS (a
// directory for screenshots), CHROMIUM (the browser's path).
"use strict";

const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const SERVER = env("SERVER_URL");
const TOKEN = env("TOKEN");
const RECEIVER = env("RECEIVER_URL");
const SHOTS = env("SHOTS");
const WAIT = { timeout: 30000 };

async function emit(n) {
  const response = await fetch(`${SERVER}/api/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ event: "order.created", payload: { n } }),
  });
  if (response.status !== 202) throw new Error(`emit ${n}: HTTP ${response.status}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    args: ["--no-sandbox"],
  });
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  // Every failed request is a problem, except the wrong token's 401.
  page.on("response", (r) => r.status() >= 400 && r.status() !== 401 && problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`));
  try {
    await page.goto(SERVER);

    // A wrong token is refused, the right one signs in.
    await page.getByLabel("Admin token").fill("not-the-token-at-all");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("The token was refused.").waitFor(WAIT);
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#live.on").waitFor(WAIT);

    // Create an endpoint through the form.
    await page.getByLabel("Id").fill("shop");
    await page.getByLabel("URL").fill(RECEIVER);
    await page.getByLabel("Events (comma-separated)").fill("order.created");
    await page.getByLabel("Attempts per event (optional)").fill("2");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByText("Created shop.").waitFor(WAIT);
    const shopRow = page.locator('#endpoints tr[data-id="shop"]');
    await shopRow.waitFor(WAIT);

    // An event from the API shows up live, without a reload.
    const navigations = [];
    page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations.push(frame.url()));
    await emit(1);
    await page.locator('#feed li[data-endpoint="shop"][data-outcome="delivered"]').first().waitFor(WAIT);
    await shopRow.locator("td:nth-child(6)", { hasText: /^1$/ }).waitFor(WAIT);
    await page.screenshot({ path: `${SHOTS}/console-delivered.png`, fullPage: true });

    // The receiver fails the next two attempts: a dead letter.
    await emit(2);
    await page.locator('#feed li[data-endpoint="shop"][data-outcome="dead_lettered"]').first().waitFor(WAIT);
    await page.getByRole("button", { name: "Show attempts and dead letters of shop" }).click();
    const letter = page.locator("#dead-letters tbody tr");
    await letter.first().waitFor(WAIT);
    await page.screenshot({ path: `${SHOTS}/console-dead-letter.png`, fullPage: true });

    // Redeliver it and see it delivered.
    await letter.first().getByRole("button", { name: /^Redeliver dead letter/ }).click();
    await page.locator("#no-dead-letters").waitFor({ state: "visible", ...WAIT });
    await shopRow.locator("td:nth-child(6)", { hasText: /^2$/ }).waitFor(WAIT);
    await page.locator("#attempts tbody tr td.outcome-delivered").first().waitFor(WAIT);
    await page.screenshot({ path: `${SHOTS}/console-redelivered.png`, fullPage: true });

    // Pause, resume and test from the table.
    await page.getByRole("button", { name: "Pause shop" }).click();
    await shopRow.locator("td.state-paused").waitFor(WAIT);
    await page.getByRole("button", { name: "Resume shop" }).click();
    await shopRow.locator("td.state-active").waitFor(WAIT);
    await page.getByRole("button", { name: "Send a test event to shop" }).click();
    await page.getByText(/^Test to shop: HTTP 200/).waitFor(WAIT);

    // Another dead letter, sent back with "Redeliver all".
    await emit(3);
    await page.locator("#dead-letters tbody tr").first().waitFor(WAIT);
    await page.getByRole("button", { name: "Redeliver all" }).click();
    await page.getByText("1 dead letter(s) sent back to the queue").waitFor(WAIT);
    await page.locator("#no-dead-letters").waitFor({ state: "visible", ...WAIT });
    await shopRow.locator("td:nth-child(6)", { hasText: /^3$/ }).waitFor(WAIT);

    // Sign out forgets the token; a reload then asks for it again.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Admin token").waitFor(WAIT);
    const kept = await page.evaluate(() => sessionStorage.length);
    if (kept !== 0) problems.push(`sessionStorage still holds ${kept} item(s) after sign-out`);

    if (navigations.length > 0) problems.push(`the page reloaded: ${navigations.join(", ")}`);
  } finally {
    await browser.close();
  }
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

main().then(
  () => console.log("console e2e: ok"),
  (error) => {
    console.error(`console e2e failed: ${error.stack || error}`);
    process.exit(1);
  },
);
