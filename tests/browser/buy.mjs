// A person's purchase, in headless Chromium: the seller dashboard is open, the buyer picks the
// nearest machine, a SKU, pays in the sandbox and watches the order reach COMPLETED; the
// dashboard shows the order arriving live (with the "new sale" sound due) and completing.
//
// usage: node buy.mjs http://127.0.0.1:PORT   (CHROMIUM overrides /usr/bin/chromium)
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.argv[2];
if (!base) {
  console.error("usage: node buy.mjs <vending-server URL>");
  process.exit(2);
}
const shots = process.env.SCREENSHOTS || "../../target/browser";
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
  ],
});
let failed = false;
try {
  const context = await browser.newContext();
  const seller = await context.newPage();
  const buyer = await context.newPage();
  for (const [name, page] of [["seller", seller], ["buyer", buyer]]) {
    page.on("pageerror", e => { console.error(`${name} page error: ${e.message}`); failed = true; });
  }

  // The dashboard first, connected to the live feed.
  await seller.goto(`${base}/seller`);
  await seller.locator("#conn", { hasText: "live" }).waitFor({ timeout: 10_000 });

  // The buyer: nearby machines (fixed position: the demo lobby), then a machine, a SKU, pay.
  await buyer.goto(`${base}/?lat=39.9087&lng=116.3975`);
  // Demo mode says so on both pages.
  await buyer.locator("#mode-banner", { hasText: "DEMO MODE: test money only" }).waitFor({ state: "visible", timeout: 10_000 });
  await seller.locator("#mode-banner", { hasText: "DEMO MODE: test money only" }).waitFor({ state: "visible", timeout: 10_000 });
  await buyer.locator('li[data-machine="VM0001"]').click({ timeout: 10_000 });
  await buyer.locator('li[data-sku="1"]').click({ timeout: 10_000 });
  await buyer.locator("#pay-sandbox").click();
  await buyer.locator('#order-status[data-status="CREATED"]').waitFor({ timeout: 10_000 });
  const orderNo = (await buyer.locator("#order-no").textContent()).trim();
  if (!/^V\d+/.test(orderNo)) throw new Error(`unexpected order number ${JSON.stringify(orderNo)}`);
  console.log(`buyer: order ${orderNo} created`);

  // The order appears on the dashboard as it is created, before anything is paid.
  await seller.locator(`tr[data-order="${orderNo}"]`).waitFor({ timeout: 10_000 });
  console.log("seller: the order appeared live");

  await buyer.locator("#sandbox-pay").click();
  await buyer.locator('#order-status[data-status="COMPLETED"]').waitFor({ timeout: 30_000 });
  console.log("buyer: COMPLETED");

  await seller.locator(`tr[data-order="${orderNo}"][data-status="COMPLETED"]`).waitFor({ timeout: 10_000 });
  const beeps = Number(await seller.evaluate(() => document.body.dataset.beeps || 0));
  if (beeps < 1) throw new Error("the dashboard did not sound the new paid order");
  console.log(`seller: COMPLETED, ${beeps} sale sound(s)`);

  await buyer.screenshot({ path: `${shots}/buyer.png`, fullPage: true });
  await seller.screenshot({ path: `${shots}/seller.png`, fullPage: true });
} catch (e) {
  console.error(`browser test failed: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log("browser test: ok");
