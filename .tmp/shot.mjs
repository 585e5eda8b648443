import { chromium } from 'playwright-core';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
const page = await browser.newPage({ viewport: { width: 900, height: 560 } });
page.on('console', (m) => console.log('console:', m.text()));
page.on('pageerror', (e) => console.log('pageerror:', e.message));
await page.goto('http://127.0.0.1:37103/?channel=room-1');
await page.waitForSelector('#state[data-state="open"]', { timeout: 15000 });
for (const text of ['hello', 'second message', 'from curl']) {
  const r = await fetch('http://127.0.0.1:37100/channels/room-1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { text } }) });
  console.log(r.status, await r.text());
}
await page.fill('#text', 'hi from the page');
await page.click('#publish button');
await page.waitForTimeout(1500);
console.log(await page.textContent('#log'));
console.log(await page.textContent('#messages'));
await page.screenshot({ path: '/tmp/h71-demo.png' });
await browser.close();
