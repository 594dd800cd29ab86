// Console login in headless Chromium against a node with `[auth] required = true`.
// Usage: node tests/login.mjs <base-url> <user> <password>. Run by crates/app/cli/tests/roles.rs.
// Checks: the login form appears; a wrong password is refused with a message; the right one
// removes the form, the live stream connects (cookie), and a state-changing request from the
// page carries the CSRF token (it reaches the handler: 404, not 403).
import { chromium } from 'playwright-core';

const [base, user, password] = process.argv.slice(2);
if (!base || !user || !password) {
  console.error('usage: node tests/login.mjs <base-url> <user> <password>');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(base);
  await page.waitForSelector('#login');
  await page.fill('#login input[name=user]', user);
  await page.fill('#login input[name=password]', 'not-the-password');
  await page.click('#login button');
  await page.waitForFunction(() => document.querySelector('#login [role=alert]')?.textContent.includes('Wrong'));
  await page.fill('#login input[name=password]', password);
  await page.click('#login button');
  await page.waitForSelector('#login', { state: 'detached' });
  await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'live');
  const status = await page.evaluate(async () => (await fetch('/api/v1/alerts/no-such-alert/ack', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
  })).status);
  if (status === 401 || status === 403) throw new Error(`POST from the logged-in console answered ${status}`);
  console.log('login checks passed');
} catch (e) {
  console.error('login check failed:', e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
