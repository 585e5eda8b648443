import { chromium } from 'playwright-core';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
const page = await browser.newPage({ viewport: { width: 900, height: 520 }, deviceScaleFactor: 1 });
await page.goto('http://127.0.0.1:37103/?channel=room-1');
await page.waitForSelector('#state[data-state="open"]', { timeout: 15000 });
await page.waitForTimeout(500);
const texts = ['deploy finished: v42 is live', 'alice joined room-1', 'bob: lunch at noon?'];
for (const text of texts) {
  await fetch('http://127.0.0.1:37100/channels/room-1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { text } }) });
  await page.waitForTimeout(400);
}
await page.fill('#text', 'sounds good — see you there');
await page.click('#publish button');
await page.waitForTimeout(1200);
await page.screenshot({ path: 'docs/demo.png' });
await browser.close();
