// A seller logs in by scanning with WeChat, in headless Chromium: logged in with the password,
// the seller binds their WeChat from the dashboard (the phone — a third browser — scans the QR
// code's URL, the emulator plays WeChat's authorization page, and the seller confirms on the
// dashboard); then, on another computer, the login page shows a QR code, the phone scans it and
// confirms, and that computer opens the dashboard.
//
// usage: SELLER_LOGIN=demo SELLER_PASSWORD=… node wechat_login.mjs http://127.0.0.1:PORT
import { launch, pages, sellerLogin, shots } from "./browser.mjs";

const base = process.argv[2];
if (!base) {
  console.error("usage: node wechat_login.mjs <vending-server URL>");
  process.exit(2);
}
const openId = `oBrowserSeller${Date.now()}`;

// The phone scans a QR code: opens its URL, says who it is on WeChat's page, allows.
async function scan(phone, url) {
  await phone.goto(url);
  await phone.locator("#open_id").fill(openId, { timeout: 10_000 });
  await phone.locator("#allow").click();
}

const browser = await launch();
let failed = false;
try {
  const [seller, phone, computer] = await pages(browser, ["seller", "phone", "computer"],
    m => { console.error(m); failed = true; });
  await seller.goto(`${base}/seller/login`);
  await sellerLogin(seller, base, process.env.SELLER_PASSWORD || "");

  // Bind: scan, then confirm on the dashboard.
  await seller.locator("#bind-wechat").click();
  await seller.locator("#bind-qr svg").waitFor({ timeout: 10_000 });
  await scan(phone, await seller.locator("#bind-qr").getAttribute("data-scan-url"));
  await phone.locator("text=confirm the binding on your dashboard").waitFor({ timeout: 10_000 });
  await seller.locator("#bind-confirm").click({ timeout: 10_000 });
  await seller.locator('#bind-status[data-status="bound"]').waitFor({ timeout: 10_000 });
  await seller.locator("#audit tr", { hasText: "bind_wechat" }).first().waitFor({ timeout: 10_000 });
  console.log("seller: WeChat bound from the dashboard");

  // Log in on another computer by scanning.
  await computer.goto(`${base}/seller/login`);
  await computer.locator("#wechat-login").click();
  await computer.locator("#wechat-qr svg").waitFor({ timeout: 10_000 });
  await scan(phone, await computer.locator("#wechat-qr").getAttribute("data-scan-url"));
  await phone.locator("text=Log in as").waitFor({ timeout: 10_000 });
  await phone.locator("#confirm").click();
  await phone.locator("text=The dashboard opens on the computer").waitFor({ timeout: 10_000 });
  await computer.waitForURL(`${base}/seller`, { timeout: 15_000 });
  await computer.locator("#seller", { hasText: process.env.SELLER_LOGIN || "demo" }).waitFor({ timeout: 10_000 });
  console.log("computer: logged in by scanning with WeChat");
  await computer.screenshot({ path: `${shots}/seller-wechat-login.png`, fullPage: true });
} catch (e) {
  console.error(`wechat login browser test failed: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
if (failed) process.exit(1);
console.log("wechat login browser test: ok");
