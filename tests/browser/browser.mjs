// The book in a real browser: serves the built book (book/) on localhost,
// opens every page in headless Chromium, and fails on a console error, an
// image or SVG that does not load, a broken internal link or fragment, or a
// search for CLOSE_WAIT that finds nothing. Keeps screenshots of the first
// chapter and of one diagram.
//
//   node tests/browser/browser.mjs [BOOK_DIR] [ARTIFACT_DIR]
import { createServer } from "node:http";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(process.argv[2] ?? "book");
const artifacts = resolve(process.argv[3] ?? "target/browser");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(join(root, "index.html"))) fail(`no built book in ${root}: run mdbook build first`);
if (!existsSync(chromiumPath)) fail(`no Chromium at ${chromiumPath}: apt-get install chromium`);
mkdirSync(artifacts, { recursive: true });

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
  ".png": "image/png", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".json": "application/json",
  ".txt": "text/plain", ".ico": "image/x-icon" };
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
  let file = join(root, path);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
  if (!file.startsWith(root) || !existsSync(file)) {
    res.writeHead(404).end("not found");
    return;
  }
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
  res.end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const problems = [];
const pages = readdirSync(root).filter((f) => f.endsWith(".html") && !["404.html", "print.html", "toc.html"].includes(f));
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
let current = "";
page.on("console", (msg) => { if (msg.type() === "error") problems.push(`${current}: console error: ${msg.text()}`); });
page.on("pageerror", (err) => problems.push(`${current}: page error: ${err.message}`));
// A request cut short by the next navigation (Chromium fetches the favicon
// after "load") is not a failure of the book; a missing file is a 404 below.
page.on("requestfailed", (req) => {
  const why = req.failure()?.errorText ?? "";
  if (why !== "net::ERR_ABORTED") problems.push(`${current}: request failed (${why}): ${req.url()}`);
});
page.on("response", (res) => { if (res.status() >= 400) problems.push(`${current}: ${res.status()} for ${res.url()}`); });

const links = new Map(); // target URL -> first page that links to it
for (const file of pages) {
  current = file;
  await page.goto(base + file, { waitUntil: "load" });
  const images = await page.$$eval("img", (imgs) => imgs.map((i) => ({ src: i.src, ok: i.complete && i.naturalWidth > 0 })));
  for (const img of images) if (!img.ok) problems.push(`${file}: image did not load: ${img.src}`);
  // getAttribute, not .href: links inside an inline SVG have no string .href.
  const hrefs = await page.$$eval("a[href]", (as) => as.map((a) => new URL(a.getAttribute("href"), location.href).href));
  for (const href of hrefs) {
    if (href.startsWith(base) && !links.has(href)) links.set(href, file);
  }
}

// Every internal link reaches a page, and every fragment an element of it.
for (const [href, from] of links) {
  const url = new URL(href);
  const file = join(root, decodeURIComponent(url.pathname).replace(/^\/+/, "") || "index.html");
  if (!existsSync(file)) { problems.push(`${from}: broken link to ${url.pathname}`); continue; }
  const id = decodeURIComponent(url.hash.slice(1));
  if (id && statSync(file).isFile() && !readFileSync(file, "utf8").includes(`id="${id}"`)) {
    problems.push(`${from}: link to a missing fragment ${url.pathname}#${id}`);
  }
}

// Search finds CLOSE_WAIT.
current = "search";
await page.goto(base + "index.html", { waitUntil: "load" });
await page.click("#mdbook-search-toggle");
// Typed key by key: the search listens to key events, not to a pasted value.
await page.locator("#mdbook-searchbar").pressSequentially("CLOSE_WAIT");
const hits = await page
  .waitForFunction(() => document.querySelectorAll("#mdbook-searchresults li").length, null, { timeout: 10000 })
  .then((h) => h.jsonValue())
  .catch(() => 0);
if (!hits) problems.push("search: CLOSE_WAIT finds nothing");

// Screenshots: the first chapter, and one diagram.
await page.goto(base + "eof-close-wait.html", { waitUntil: "load" });
await page.screenshot({ path: join(artifacts, "eof-close-wait.png") });
await page.locator('main img[src="diagrams/eof-close-wait.svg"]').first().screenshot({ path: join(artifacts, "eof-close-wait-diagram.png") });

await browser.close();
server.close();
for (const p of problems) console.log(p);
console.log(`browser: ${pages.length} pages, ${links.size} internal links, search found ${hits} results for CLOSE_WAIT; ` +
  `${problems.length} problems; screenshots in ${artifacts}`);
process.exit(problems.length === 0 ? 0 : 1);

function fail(message) {
  console.log(`browser: ${message}`);
  process.exit(1);
}
