import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
const root = path.resolve(process.argv[2]);
const pages = process.argv.slice(3);
const server = http.createServer((req, res) => {
  let p = decodeURIComponent(req.url.split('?')[0].split('#')[0]).replace(/^\/tcpclose/, '');
  if (p.endsWith('/')) p += 'index.html';
  const f = path.join(root, p);
  fs.readFile(f, (e, d) => { if (e) { res.writeHead(404); res.end(); return; }
    const t = f.endsWith('.css') ? 'text/css' : f.endsWith('.js') ? 'text/javascript' : f.endsWith('.svg') ? 'image/svg+xml' : 'text/html';
    res.writeHead(200, {'content-type': t}); res.end(d); });
}).listen(0);
const port = server.address().port;
const exe = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(fs.existsSync);
const browser = await chromium.launch({ executablePath: exe });
for (const spec of pages) {
  const [page_, width, theme, sel] = spec.split(',');
  const ctx = await browser.newContext({ viewport: { width: +width, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${port}/tcpclose/${page_}`);
  if (theme) await page.evaluate(t => { document.documentElement.className = t + ' js'; }, theme);
  const name = `/tmp/shots/${page_.replace(/[^a-z0-9]/gi,'_')}-${width}-${theme||'light'}.png`;
  if (sel) { await (await page.$(sel)).screenshot({ path: name }); } else await page.screenshot({ path: name, fullPage: false });
  console.log(name);
  await ctx.close();
}
await browser.close(); server.close();
