// The book in a real browser: serves the built book (book/) on localhost,
// opens every page in headless Chromium, and fails on a console error, an
// image or SVG that does not load, a broken internal link or fragment, an
// introduction of more than 500 words before its first chapter link, or a
// search for CLOSE_WAIT that finds nothing. Then it opens every page again
// in each of mdBook's five themes at 1366 px and at 390 px (a phone) and
// fails on a page body wider than the screen, a figure scrolling sideways,
// a diagram label displayed smaller than 9 CSS px, SVG text with a contrast
// under 4.5:1 against what is behind it, a label cut with "…", two marks
// in a row, a mark that leads to the top of its page or to nothing, a mark
// smaller than 24 x 24 px, or a console error; on a table (or its wrapper)
// wider than its column or scrolling sideways, a claim quote or a cell's
// label with a contrast under 4.5:1, and, on the phone, on a table cell
// narrower than 120 px (a squeezed column) or one that does not show its
// column's name (theme/cards.js stacks tables as cards). Keeps a
// screenshot of each page at both widths in the light and coal themes.
// Last, it opens each sequence diagram's files on their own, for a reader
// who prefers a light and a dark scheme, and checks their labels the same
// way.
//
// With EDITION (zh-CN), the same for the edition in BOOK_DIR/EDITION, served
// with the whole site around it; its search is for 关闭 and 半关闭 (a
// search index that does not segment Chinese finds nothing). In both, the
// language picker of each page leads to the same page, and section, of
// the other edition.
//
//   node tests/browser/browser.mjs [BOOK_DIR] [ARTIFACT_DIR] [EDITION]
import { createServer } from "node:http";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import { chromium } from "playwright-core";

const site = resolve(process.argv[2] ?? "book");
const artifacts = resolve(process.argv[3] ?? "target/browser");
const edition = process.argv[4] ?? "";
const root = join(site, edition);
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(join(root, "index.html"))) fail(`no built book in ${root}: run mdbook build first`);
if (!existsSync(chromiumPath)) fail(`no Chromium at ${chromiumPath}: apt-get install chromium`);
mkdirSync(artifacts, { recursive: true });

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
  ".png": "image/png", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".json": "application/json",
  ".txt": "text/plain", ".ico": "image/x-icon" };
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
  let file = join(site, path);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
  if (!file.startsWith(site) || !existsSync(file)) {
    res.writeHead(404).end("not found");
    return;
  }
  // Cacheable, as a real host serves it: each page would otherwise fetch
  // mdBook's twenty scripts, styles and fonts again.
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "max-age=3600" });
  res.end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${server.address().port}/`;
const base = edition ? `${origin}${edition}/` : origin;

const problems = [];
const pages = readdirSync(root).filter((f) => f.endsWith(".html") && !["404.html", "print.html", "toc.html"].includes(f));
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
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
    if (href.startsWith(origin) && !links.has(href)) links.set(href, file);
  }
}

// Every internal link reaches a page, and every fragment an element of it.
for (const [href, from] of links) {
  const url = new URL(href);
  const file = join(site, decodeURIComponent(url.pathname).replace(/^\/+/, "") || "index.html");
  if (!existsSync(file)) { problems.push(`${from}: broken link to ${url.pathname}`); continue; }
  const id = decodeURIComponent(url.hash.slice(1));
  if (id && statSync(file).isFile() && !readFileSync(file, "utf8").includes(`id="${id}"`)) {
    problems.push(`${from}: link to a missing fragment ${url.pathname}#${id}`);
  }
}

// The introduction is one screen: at most 500 words before its first link
// to a chapter.
current = "introduction.html";
await page.goto(base + "introduction.html", { waitUntil: "load" });
const introWords = await page.evaluate(() => {
  const main = document.querySelector("main");
  const first = [...main.querySelectorAll("a[href]")].find((a) => {
    const href = a.getAttribute("href");
    return /\.html(#|$)/.test(href) && !href.startsWith("introduction.html") && !href.startsWith("http") && !a.closest("sup");
  });
  if (!first) return Infinity;
  const range = document.createRange();
  range.setStart(main, 0);
  range.setEndBefore(first);
  return range.toString().split(/\s+/).filter((w) => /\w/.test(w)).length;
});
if (introWords > 500) problems.push(`introduction.html: ${introWords} words before the first link to a chapter (at most 500)`);

// Search finds CLOSE_WAIT; in Chinese, 关闭 finds the chapters about
// closing, and 半关闭 the one about the half-close.
async function search(term) {
  current = `search for ${term}`;
  await page.goto(base + "index.html", { waitUntil: "load" });
  await page.click("#mdbook-search-toggle");
  // Typed key by key: the search listens to key events, not to a pasted value.
  await page.locator("#mdbook-searchbar").pressSequentially(term);
  // Characters off the keyboard's layout (Chinese) arrive as text input,
  // without key events: the key up that ends an input method's composition.
  await page.locator("#mdbook-searchbar").dispatchEvent("keyup");
  await page
    .waitForFunction(() => document.querySelectorAll("#mdbook-searchresults li").length, null, { timeout: 10000 })
    .catch(() => null);
  return page.$$eval("#mdbook-searchresults li a", (as) => as.map((a) => a.getAttribute("href").split(/[?#]/)[0]));
}
const searches = edition === "zh-CN"
  ? [["关闭", ["eof-close-wait.html", "half-close.html", "unread-data-rst.html", "so-linger.html"]], ["半关闭", ["half-close.html"]]]
  : [["CLOSE_WAIT", ["eof-close-wait.html"]]];
let hits = 0;
for (const [term, wanted] of searches) {
  const found = await search(term);
  hits += found.length;
  for (const want of wanted) {
    if (!found.some((href) => href.endsWith(want))) problems.push(`search: ${term} does not find ${want} (found ${found.length}: ${found.slice(0, 5).join(", ")} ...)`);
  }
}

// The language picker leads to the same page and section of the other
// edition, which exists.
current = "language picker";
await page.goto(base + "half-close.html#the-rules", { waitUntil: "load" });
const other = await page.$eval(".edition-switch", (a) => new URL(a.getAttribute("href"), location.href).href).catch(() => null);
const expected = (edition ? origin : `${origin}zh-CN/`) + "half-close.html#the-rules";
if (other !== expected) problems.push(`language picker: half-close.html#the-rules leads to ${other}, not ${expected}`);
else if (!existsSync(join(site, new URL(other).pathname))) problems.push(`language picker: ${other} does not exist`);

// Every page in every theme, on a desktop and on a phone.
const themes = ["light", "rust", "coal", "navy", "ayu"];
const widths = [1366, 390];
const shots = join(artifacts, "screenshots");
mkdirSync(shots, { recursive: true });
let views = 0;
// Every page in one theme at one width, in a context of its own.
async function viewEveryPage(theme, width) {
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1 });
  await context.addInitScript((t) => localStorage.setItem("mdbook-theme", t), theme);
  const view = await context.newPage();
  let at = "";
  view.on("console", (msg) => { if (msg.type() === "error") problems.push(`${at}: console error: ${msg.text()}`); });
  view.on("pageerror", (err) => problems.push(`${at}: page error: ${err.message}`));
  for (const file of pages) {
    at = `${file} (${theme}, ${width} px)`;
    await view.goto(base + file, { waitUntil: "load" });
    const found = await view.evaluate(inspectPage, { theme, svgs: "main svg", phone: width < 600 });
    for (const p of found) problems.push(`${at}: ${p}`);
    if (theme === "light" || theme === "coal") {
      const name = `${file.replace(/\.html$/, "")}-${theme}-${width}.jpeg`;
      await view.screenshot({ path: join(shots, name), fullPage: true, type: "jpeg", quality: 70 });
    }
    views += 1;
  }
  await context.close();
}
// Two contexts at a time: page loads wait on the server and the
// compositor, and the machine has two cores.
const combinations = themes.flatMap((theme) => widths.map((width) => [theme, width]));
const workers = [0, 1].map(async () => {
  while (combinations.length > 0) await viewEveryPage(...combinations.shift());
});
await Promise.all(workers);

// A sequence diagram on its own (GitHub, `tcpclose run --svg`), as a
// reader who prefers a light or a dark scheme sees it.
const diagrams = readdirSync(join(root, "diagrams")).filter((f) => f.endsWith(".svg"));
for (const colorScheme of ["light", "dark"]) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 }, colorScheme });
  const view = await context.newPage();
  for (const file of diagrams) {
    current = `diagrams/${file} on its own (${colorScheme})`;
    await view.goto(base + "diagrams/" + file, { waitUntil: "load" });
    const found = await view.evaluate(inspectPage, { theme: null, svgs: "svg" });
    for (const p of found) problems.push(`${current}: ${p}`);
    views += 1;
  }
  await context.close();
}

await browser.close();
server.close();
for (const p of problems) console.log(p);
console.log(`browser: ${pages.length} pages, ${links.size} internal links, search found ${hits} results for ${searches.map(([t]) => t).join(" and ")}; ` +
  `${views} views (${themes.length} themes × ${widths.join(" and ")} px, and ${diagrams.length} diagrams on their own, light and dark); ${problems.length} problems; screenshots in ${shots}`);
process.exit(problems.length === 0 ? 0 : 1);

function fail(message) {
  console.log(`browser: ${message}`);
  process.exit(1);
}

// Runs in the page: what is wrong with it in this theme at this width, or
// (theme null) with an SVG document on its own. svgs: which SVGs to read;
// phone: the screen is a phone's, where a table must read as cards.
function inspectPage({ theme, svgs, phone = false }) {
  const found = [];
  const html = document.documentElement;
  if (theme && !html.classList.contains(theme)) found.push(`the theme is not ${theme}`);
  // The page body overflows when the text column, or anything around it,
  // scrolls sideways (mdBook's .content is a scroll container of its own);
  // a table or code block that scrolls inside itself is fine here.
  for (let e = document.querySelector("main"); e; e = e.parentElement) {
    if (e.scrollWidth > e.clientWidth + 1) {
      const wide = [...document.querySelectorAll("main *")]
        .filter((c) => c.getBoundingClientRect().right > e.getBoundingClientRect().right + 1 && !c.parentElement.closest("figure.diagram, .table-wrapper, pre"))
        .slice(0, 3).map((c) => `<${c.tagName.toLowerCase()}${c.className && typeof c.className === "string" ? "." + c.className : ""}>`);
      found.push(`the page is ${e.scrollWidth} px wide in a ${e.clientWidth} px <${e.tagName.toLowerCase()}> (${wide.join(", ")})`);
      break;
    }
  }
  // A figure fits its column: none scrolls sideways (the state machine has
  // a narrow drawing, the costs plot shrinks).
  for (const figure of document.querySelectorAll("main figure")) {
    if (figure.scrollWidth > figure.clientWidth + 1) {
      const name = figure.id || (figure.querySelector("[aria-label]")?.getAttribute("aria-label") ?? "").slice(0, 40);
      found.push(`figure "${name}" scrolls sideways: ${figure.scrollWidth} px inside, ${figure.clientWidth} px outside`);
    }
  }
  const rgb = (c) => (c.match(/[\d.]+/g) ?? []).slice(0, 4).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const pageBackground = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const contrast = (fg, bg) => {
    const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    return (l1 + 0.05) / (l2 + 0.05);
  };
  // Tables: none wider than its column, none scrolling sideways (mdBook's
  // wrapper would scroll it), their text readable in the theme; on a phone
  // no column squeezed, every cell under its column's name.
  const px = (n) => `${Math.round(n)} px`;
  for (const table of document.querySelectorAll("main table")) {
    const heads = [...(table.tHead?.rows[0]?.cells ?? [])].map((th) => th.textContent.replace(/\s+/g, " ").trim());
    const columns = heads.join(" | ");
    const name = `the table (${columns.length > 72 ? columns.slice(0, 71) + "…" : columns})`;
    const wrapper = table.closest(".table-wrapper") ?? table;
    const column = wrapper.parentElement;
    const [tw, ww] = [table.getBoundingClientRect().width, wrapper.getBoundingClientRect().width];
    if (ww > column.clientWidth + 1) found.push(`${name}'s wrapper is ${px(ww)} wide in a ${px(column.clientWidth)} column`);
    if (tw > wrapper.clientWidth + 1) found.push(`${name} is ${px(tw)} wide in a ${px(wrapper.clientWidth)} wrapper`);
    for (const box of new Set([wrapper, table])) {
      if (box.scrollWidth > box.clientWidth + 1) {
        found.push(`${name} scrolls sideways: <${box.tagName.toLowerCase()}${box === wrapper && box !== table ? ".table-wrapper" : ""}> ` +
          `is ${box.scrollWidth} px wide inside, ${box.clientWidth} px outside`);
      }
    }
    if (!phone) continue;
    for (const row of table.tBodies[0]?.rows ?? []) {
      let col = 0;
      for (const cell of row.cells) {
        const head = heads[col] ?? "";
        col += cell.colSpan || 1;
        const width = cell.getBoundingClientRect().width;
        if (width < 120 && cell.textContent.trim()) {
          found.push(`${name}: a cell of the column "${head}" is squeezed to ${px(width)} ("${cell.textContent.trim().slice(0, 30)}")`);
        }
        if (!head) continue;
        const before = getComputedStyle(cell, "::before");
        if (cell.getAttribute("data-label") !== head || ["none", "normal"].includes(before.content) || before.display === "none") {
          found.push(`${name}: a cell of the column "${head}" does not show its column's name`);
        } else {
          const ratio = contrast(rgb(before.color), pageBackground(cell));
          if (ratio < 4.5) found.push(`${name}: the label "${head}" has a contrast of ${ratio.toFixed(2)}:1`);
        }
      }
    }
  }
  // A claim quote ({{#claim ID}}), in a table or in the prose.
  for (const q of document.querySelectorAll("main q.claim")) {
    const ratio = contrast(rgb(getComputedStyle(q).color), pageBackground(q));
    if (ratio < 4.5) found.push(`a claim has a contrast of ${ratio.toFixed(2)}:1 ("${q.textContent.slice(0, 40)}")`);
  }
  // A check's mark leads to its claim: on this page, to an element that
  // exists, never to the top of the page (other pages' fragments: lychee).
  for (const mark of document.querySelectorAll("main sup a[href]")) {
    const target = new URL(mark.getAttribute("href"), location.href);
    if (target.pathname !== location.pathname) continue;
    const id = decodeURIComponent(target.hash.slice(1));
    if (!id) found.push(`a mark links to the top of its own page (${mark.getAttribute("href")})`);
    else if (!document.getElementById(id)) found.push(`a mark links to a missing element #${id}`);
  }
  // One mark per sentence: a sentence with several proofs has one ✓✓.
  for (const mark of document.querySelectorAll("main sup")) {
    let before = mark.previousSibling;
    while (before && before.nodeType === Node.TEXT_NODE && !before.textContent.trim()) before = before.previousSibling;
    if (before?.nodeName === "SUP") {
      found.push(`two marks in a row: ${before.textContent} ${mark.textContent} (${mark.querySelector("a")?.getAttribute("href") ?? mark.title})`);
      break;
    }
  }
  // Each mark is a tap target of at least 24 × 24 px (WCAG 2.5.8).
  for (const mark of document.querySelectorAll("main sup a[href]")) {
    const box = mark.getBoundingClientRect();
    if (box.width < 24 || box.height < 24) {
      found.push(`a mark is a ${box.width.toFixed(0)} × ${box.height.toFixed(0)} px target (${mark.getAttribute("href")})`);
      break;
    }
  }
  // A transcript reads on a phone: its claims wrap, nothing scrolls.
  for (const claim of document.querySelectorAll("main .transcript li")) {
    if (claim.scrollWidth > claim.clientWidth + 1) found.push(`a claim of a transcript is wider than its column (${claim.id})`);
  }
  for (const svg of document.querySelectorAll(svgs)) {
    const scale = svg.getScreenCTM()?.a ?? 1;
    const rects = [...svg.querySelectorAll("rect")];
    for (const text of svg.querySelectorAll("text")) {
      const label = text.textContent.trim();
      if (!label) continue;
      const style = getComputedStyle(text);
      const shown = parseFloat(style.fontSize) * scale;
      if (shown < 9) found.push(`"${label}" is displayed at ${shown.toFixed(1)} px`);
      if (label.endsWith("…")) found.push(`"${label}" is cut`);
      // What is behind the text: the last filled rectangle drawn before it
      // that covers its middle, or else the page.
      const box = text.getBBox();
      const [mx, my] = [box.x + box.width / 2, box.y + box.height / 2];
      let behind = pageBackground(svg);
      for (const r of rects) {
        if (r.compareDocumentPosition(text) & Node.DOCUMENT_POSITION_FOLLOWING) {
          const b = r.getBBox();
          const fill = getComputedStyle(r).fill;
          if (mx >= b.x && mx <= b.x + b.width && my >= b.y && my <= b.y + b.height && fill.startsWith("rgb")) {
            behind = rgb(fill).slice(0, 3);
          }
        }
      }
      const ratio = contrast(rgb(style.fill), behind);
      if (ratio < 4.5) found.push(`"${label}" has a contrast of ${ratio.toFixed(2)}:1 (${style.fill} on rgb(${behind.join(", ")}))`);
    }
  }
  return [...new Set(found)].slice(0, 8);
}
