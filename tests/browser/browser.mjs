// What the browser tests share: headless Chromium (Debian's; CHROMIUM overrides the path), the
// screenshots folder, and the seller's login on the dashboard.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

export const shots = process.env.SCREENSHOTS || "../../target/browser";
mkdirSync(shots, { recursive: true });

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
    ],
  });
}

// A page per person (their own cookies); a page error fails the test through `onError`.
export async function pages(browser, names, onError) {
  const all = [];
  for (const name of names) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", e => onError(`${name} page error: ${e.message}`));
    all.push(page);
  }
  return all;
}

// Logs the seller in on the login page with `password` and waits for the live dashboard.
export async function sellerLogin(page, base, password) {
  await page.locator("#login").fill(process.env.SELLER_LOGIN || "demo");
  await page.locator("#password").fill(password);
  await page.locator("#submit").click();
  await page.waitForURL(`${base}/seller`, { timeout: 10_000 });
  await page.locator("#conn", { hasText: "live" }).waitFor({ timeout: 10_000 });
}
