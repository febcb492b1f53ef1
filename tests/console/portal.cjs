// Drives the customer portal in headless Chromium, as a customer would: open
// the link the operator made, add an endpoint choosing two event types, send
// a test, see a failed attempt's response body, send the message again; and
// as an attacker would: the link of one application never shows another's,
// and a link past its end is refused.
//
// Run by tests/portal_browser.rs, which starts the server, makes the
// applications, event types and links with the admin token, and passes:
// SERVER_URL, TOKEN (the operator's, used only here in node to emit events:
// it never reaches the browser; also to make a link that ends within
// seconds), ACME_LINK, GLOBEX_LINK, RECEIVER_URL, GLOBEX_RECEIVER_URL,
// SHOTS, CHROMIUM.
"use strict";

const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const SERVER = env("SERVER_URL");
const RECEIVER = env("RECEIVER_URL");
const SHOTS = env("SHOTS");
const WAIT = { timeout: 30000 };

// The operator's backend makes a link to an application's portal.
async function link(app, expiresIn) {
  const response = await fetch(`${SERVER}/api/v1/apps/${app}/portal-links`, {
    method: "POST",
    headers: { authorization: `Bearer ${env("TOKEN")}`, "content-type": "application/json" },
    body: JSON.stringify({ expires_in: expiresIn }),
  });
  if (response.status !== 201) throw new Error(`link to ${app}: HTTP ${response.status}`);
  return (await response.json()).url;
}

// The operator's backend sends an event to an application.
async function emit(app, payload) {
  const response = await fetch(`${SERVER}/api/v1/apps/${app}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${env("TOKEN")}`, "content-type": "application/json" },
    body: JSON.stringify({ event: "order.created", payload }),
  });
  if (response.status !== 202) throw new Error(`emit to ${app}: HTTP ${response.status}`);
  return (await response.json()).request_id;
}

async function main() {
  const browser = await chromium.launch({ executablePath: env("CHROMIUM"), args: ["--no-sandbox"] });
  const problems = [];
  const watch = (page) => {
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("dialog", (dialog) => dialog.accept());
    page.on("request", (request) => {
      const auth = request.headers().authorization || "";
      if (auth.includes(env("TOKEN"))) problems.push(`the admin token reached the browser: ${request.url()}`);
    });
    // Every failed request is a problem, except those this test provokes.
    const provoked = (url) => url.includes("/apps/globex") || url.endsWith("/api/v1/api-keys");
    page.on("response", (r) => r.status() >= 400 && !provoked(r.url()) && r.status() !== 401
      && problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`));
  };
  try {
    const context = await browser.newContext({ viewport: { width: 1366, height: 1000 } });
    const page = await context.newPage();
    watch(page);
    await page.goto(env("ACME_LINK"));
    await page.getByRole("heading", { name: "Webhooks · Acme Inc." }).waitFor(WAIT);
    if (page.url().includes("#")) problems.push(`the token stayed in the address: ${page.url()}`);

    // Add an endpoint: two event types of the catalog.
    await page.getByLabel("URL").fill(RECEIVER);
    await page.getByLabel("order.created").check();
    await page.getByLabel("order.paid").check();
    await page.getByRole("button", { name: "Add endpoint" }).click();
    await page.getByText("Endpoint added.").waitFor(WAIT);
    const secret = await page.locator("#secret-value").textContent();
    if (!/^whsec_/.test(secret)) problems.push(`no signing secret shown: ${secret}`);
    const endpointRow = page.locator("#endpoints tbody tr", { hasText: RECEIVER });
    await endpointRow.getByText("order.created, order.paid").waitFor(WAIT);

    // A test event, delivered.
    await page.getByRole("button", { name: `Send a test event to ${RECEIVER}` }).click();
    await page.getByText(/^Test delivered: HTTP 200/).waitFor(WAIT);

    // The operator sends an event; its first attempt fails with a body the
    // customer reads in the portal, then the retry is delivered.
    const requestId = await emit("acme", { n: 1 });
    await emit("globex", { n: "globex-secret" });
    await page.locator("#messages tbody tr", { hasText: requestId }).click(WAIT);
    await page.locator("#attempts td.body", { hasText: "out of stock" }).waitFor(WAIT);
    await page.locator("#attempts td.outcome-delivered").waitFor(WAIT);
    await page.getByRole("button", { name: `Send this message again to ${RECEIVER}` }).click();
    await page.getByText(`Sent again to ${RECEIVER}.`).waitFor(WAIT);
    await page.locator("#attempts td.outcome-delivered").nth(1).waitFor(WAIT);
    await page.screenshot({ path: `${SHOTS}/portal.png`, fullPage: true });

    // Recover everything since a minute ago: the one message, once more.
    const minuteAgo = new Date(Date.now() - 60_000 - new Date().getTimezoneOffset() * 60_000);
    await page.getByLabel("Since").fill(minuteAgo.toISOString().slice(0, 16));
    await page.getByRole("button", { name: "Send them again" }).click();
    await page.getByText("Sent again: 1 message(s).").waitFor(WAIT);

    // Nothing of another application shows, and its routes are 404 to
    // this link.
    const text = await page.locator("body").innerText();
    for (const foreign of ["globex-secret", env("GLOBEX_RECEIVER_URL"), "Globex"]) {
      if (text.includes(foreign)) problems.push(`acme's portal shows ${foreign}`);
    }
    const statuses = await page.evaluate(async () => {
      const token = sessionStorage.getItem("webhooks-emitter-portal");
      const headers = { authorization: `Bearer ${token}` };
      const paths = ["/api/v1/apps/globex/endpoints", "/api/v1/apps/globex/messages", "/api/v1/api-keys"];
      return Promise.all(paths.map(async (path) => `${path} ${(await fetch(path, { headers })).status}`));
    });
    const expected = ["/api/v1/apps/globex/endpoints 404", "/api/v1/apps/globex/messages 404", "/api/v1/api-keys 403"];
    if (statuses.join() !== expected.join()) problems.push(`cross-application answers: ${statuses.join(", ")}`);

    // globex's own link shows globex only.
    const globex = await context.newPage();
    watch(globex);
    await globex.goto(env("GLOBEX_LINK"));
    await globex.getByRole("heading", { name: "Webhooks · Globex" }).waitFor(WAIT);
    await globex.locator("#endpoints tbody tr", { hasText: env("GLOBEX_RECEIVER_URL") }).waitFor(WAIT);
    const globexText = await globex.locator("body").innerText();
    if (globexText.includes(RECEIVER)) problems.push("globex's portal shows acme's endpoint");
    await globex.close();

    // A link past its end: refused, in a fresh browser session.
    const late = await browser.newContext();
    const short = await late.newPage();
    watch(short);
    const shortLink = await link("acme", 2);
    await short.goto(shortLink);
    await short.getByRole("heading", { name: "Webhooks · Acme Inc." }).waitFor(WAIT);
    const ends = Number(shortLink.split(".").at(-2)) * 1000;
    await short.waitForTimeout(Math.max(0, ends - Date.now()) + 1500); // past the link's end, by the clock
    // The page's next read is refused and it says so; a reload says the same.
    await short.getByText("This link has expired, or is not valid.").waitFor(WAIT);
    await short.reload();
    await short.getByText("This link has expired, or is not valid.").waitFor(WAIT);
    if (await short.locator("#portal").isVisible()) problems.push("an expired link still shows the portal");
    await short.screenshot({ path: `${SHOTS}/portal-expired.png` });
    await late.close();
  } finally {
    await browser.close();
  }
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

main().then(
  () => console.log("portal e2e: ok"),
  (error) => {
    console.error(`portal e2e failed: ${error.stack || error}`);
    process.exit(1);
  },
);
