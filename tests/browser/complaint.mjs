// A payer's complaint, in headless Chromium, on a server whose demo merchant speaks WeChat Pay
// API v3: the buyer pays a WeChat order (the emulator plays the phone), the payer complains (the
// emulator files it), the seller sees it on the dashboard beside the order, answers with an
// image, refunds and completes it; the emulator holds every answer, the audit every action.
//
// usage: SELLER_LOGIN=demo SELLER_PASSWORD=… EMULATOR_URL=… node complaint.mjs http://127.0.0.1:PORT
import { launch, pages, sellerLogin, shots } from "./browser.mjs";

const base = process.argv[2];
const emulator = process.env.EMULATOR_URL;
if (!base || !emulator) {
  console.error("usage: EMULATOR_URL=… node complaint.mjs <vending-server URL>");
  process.exit(2);
}

async function control(path, body) {
  const r = await fetch(emulator + path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

// The smallest PNG there is (a 1×1 pixel).
const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==", "base64");

const browser = await launch();
let failed = false;
try {
  const [seller, buyer] = await pages(browser, ["seller", "buyer"], m => { console.error(m); failed = true; });
  await seller.goto(`${base}/seller/login`);
  await sellerLogin(seller, base, process.env.SELLER_PASSWORD || "");

  // The buyer pays with WeChat (scan to pay); the emulator plays the buyer's phone.
  await buyer.goto(`${base}/?lat=39.9087&lng=116.3975`);
  await buyer.locator('li[data-machine="VM0001"]').click({ timeout: 10_000 });
  await buyer.locator('li[data-sku="1"]').click({ timeout: 10_000 });
  await buyer.locator("#pay-wechat").click({ timeout: 10_000 });
  await buyer.locator('#order-status[data-status="CREATED"]').waitFor({ timeout: 10_000 });
  const orderNo = (await buyer.locator("#order-no").textContent()).trim();
  await control("/sandbox/pay", { out_trade_no: orderNo });
  await buyer.locator('#order-status[data-status="COMPLETED"]').waitFor({ timeout: 30_000 });
  console.log(`buyer: ${orderNo} paid with WeChat, COMPLETED`);

  // The payer complains; the dashboard shows it (it reads complaints every 15 s) by the order.
  const { complaint_id: id } = await control("/sandbox/complaints",
    { out_trade_no: orderNo, detail: "paid, nothing came out" });
  const row = seller.locator(`tr[data-complaint="${id}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.locator("td", { hasText: orderNo }).waitFor({ timeout: 5_000 });
  await seller.locator(`tr[data-complaint="${id}"][data-state="PENDING"]`).waitFor({ timeout: 5_000 });
  console.log(`seller: complaint ${id} on the dashboard beside ${orderNo}`);

  // Answered with an image, refunded (the whole order, the default), completed.
  const answers = ["Sorry! We are refunding you now.", null, "nothing came out"];
  seller.on("dialog", d => { const a = answers.shift(); d.accept(a == null ? d.defaultValue() : a); });
  await row.locator("input.image").setInputFiles({ name: "receipt.png", mimeType: "image/png", buffer: png });
  await row.locator("button.answer").click();
  await seller.locator(`tr[data-complaint="${id}"][data-state="PROCESSING"]`).waitFor({ timeout: 10_000 });
  await row.locator("button.refund").click();
  await seller.locator(`tr[data-order="${orderNo}"][data-status="REFUNDED"]`).waitFor({ timeout: 20_000 });
  await row.locator("button.complete").click();
  await seller.locator(`tr[data-complaint="${id}"][data-state="PROCESSED"]`).waitFor({ timeout: 10_000 });
  await seller.locator("#audit tr", { hasText: "complaint_complete" }).first().waitFor({ timeout: 10_000 });
  console.log("seller: answered with an image, refunded, completed; in the audit");

  // WeChat (the emulator) holds the answer and its image.
  const held = (await control("/sandbox/complaints")).find(c => c.complaint_id === id);
  const response = held.history.find(h => h.operate_type === "MERCHANT_RESPONSE");
  if (held.state !== "PROCESSED" || !response || response.image_list.length !== 1) {
    throw new Error(`the emulator holds ${JSON.stringify(held)}`);
  }
  await seller.screenshot({ path: `${shots}/seller-complaint.png`, fullPage: true });
} catch (e) {
  console.error(`complaint browser test failed: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log("complaint browser test: ok");
