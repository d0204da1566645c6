// A person's purchase, in headless Chromium: the seller logs in and opens the dashboard, the
// buyer picks the nearest machine, a SKU, pays in the sandbox and watches the order reach
// COMPLETED; the dashboard shows the order arriving live (with the "new sale" sound due) and
// completing.
//
// usage: SELLER_LOGIN=demo SELLER_PASSWORD=… node buy.mjs http://127.0.0.1:PORT
// (CHROMIUM overrides /usr/bin/chromium)
import { launch, pages, sellerLogin, shots } from "./browser.mjs";

const base = process.argv[2];
if (!base) {
  console.error("usage: node buy.mjs <vending-server URL>");
  process.exit(2);
}

const browser = await launch();
let failed = false;
try {
  // Two people, two browsers' worth of cookies.
  const [seller, buyer] = await pages(browser, ["seller", "buyer"], m => { console.error(m); failed = true; });

  // The dashboard first: without a session it sends the seller to the login page.
  await seller.goto(`${base}/seller`);
  await seller.waitForURL(`${base}/seller/login`, { timeout: 10_000 });
  await seller.locator("#login").fill(process.env.SELLER_LOGIN || "demo");
  await seller.locator("#password").fill("not the password");
  await seller.locator("#submit").click();
  await seller.locator("#error", { hasText: "wrong login or password" }).waitFor({ timeout: 10_000 });
  await sellerLogin(seller, base, process.env.SELLER_PASSWORD || "");
  await seller.locator("#seller", { hasText: "demo" }).waitFor({ timeout: 10_000 });
  await seller.locator('div[data-machine="VM0001"]').waitFor({ timeout: 10_000 });
  console.log("seller: logged in, dashboard live");

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

  // The seller refunds it from the dashboard (the whole amount, the default), and it is recorded.
  const answers = [null, "refund from the browser test"];
  seller.on("dialog", d => { const a = answers.shift(); d.accept(a === null ? d.defaultValue() : a); });
  await seller.locator(`tr[data-order="${orderNo}"] button.refund`).click();
  await seller.locator(`tr[data-order="${orderNo}"][data-status="REFUNDED"]`).waitFor({ timeout: 10_000 });
  await seller.locator("#audit tr", { hasText: orderNo }).first().waitFor({ timeout: 10_000 });
  console.log("seller: refunded from the dashboard, in the audit");

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
