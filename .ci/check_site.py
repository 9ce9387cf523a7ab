#!/usr/bin/env python
"""Check the built docs site in headless Chromium, page by page, as a reader at 1400 px would see it.

    python .ci/check_site.py _docs [--screenshots FOLDER]

Serves the folder on 127.0.0.1 (a free port), blocks every request that leaves it, and for every HTML page checks:

- the page loads and no script raises an uncaught error, except the scripts a published site takes from a CDN
  (they are blocked here, so what depends on them may fail: those errors are listed, not counted);
- every local image loads, and none is wider than the page's main column (its natural width at 1x);
- every saved widget state (`application/vnd.jupyter.widget-state+json`) parses as JSON;
- every internal link points to a file of the site, and a link with `#anchor` to an element with that id.

Screenshots of the index, conductance, DeepLIFT, browser and text-CNN pages go to `--screenshots`.
Prints one line per problem and a closing `site: N pages checked, N problems`; exits 1 on any problem.
"""
from __future__ import annotations
import argparse, functools, http.server, json, socket, sys, threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

CHROMIUM = "/usr/lib/chromium/chromium"   # the real binary; /usr/bin/chromium is a wrapper script
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = {"index.html": "index", "conductance.html": "conductance", "deeplift.html": "deeplift", "browser.html": "browser",
         "textcnn.html": "textcnn"}
CDN = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com", "fonts.gstatic.com")
# what fails when those scripts are blocked: Quarto's pages with HTML outputs call define() of the CDN's require.js
NEEDS_CDN = ("define is not defined", "require is not defined", "jQuery is not defined", "$ is not defined", "MathJax is not defined")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


PAGE_FACTS = """() => {
  const main = document.querySelector('main') || document.querySelector('#quarto-document-content') || document.body;
  const column = main.getBoundingClientRect().width;
  const imgs = [...main.querySelectorAll('img')].map(i => ({src: i.getAttribute('src') || '', ok: i.complete && i.naturalWidth > 0,
                                                          natural: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  const states = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')].map(s => s.textContent);
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const cdn = [...document.querySelectorAll('script[src]')].some(s => /^https?:/.test(s.getAttribute('src')));
  return {column, imgs, states, links, ids, cdn};
}"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("site", type=Path)
    p.add_argument("--screenshots", type=Path)
    a = p.parse_args()
    site = a.site.resolve()
    pages = sorted(q.relative_to(site).as_posix() for q in site.rglob("*.html") if "site_libs" not in q.parts)
    if not pages: sys.exit(f"no HTML pages under {site}")
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}/"
    problems, facts, cdn_errors = [], {}, []
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith((base, "data:", "blob:", "about:"))
                  else route.abort())
        for page_name in pages:
            page, errors = ctx.new_page(), []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            resp = page.goto(base + page_name, wait_until="load")
            if resp is None or resp.status != 200: problems.append(f"{page_name}: HTTP {resp.status if resp else 'no response'}")
            page.wait_for_timeout(300)
            f = page.evaluate(PAGE_FACTS); facts[page_name] = f
            for e in errors:
                from_cdn = any(h in e for h in CDN) or (f["cdn"] and any(m in e for m in NEEDS_CDN))
                (cdn_errors if from_cdn else problems).append(f"{page_name}: script error: {e[:300]}")
            for img in f["imgs"]:
                if not img["ok"]: problems.append(f"{page_name}: image does not load: {img['src'][:80]}")
                elif img["natural"] > f["column"] + 1:
                    problems.append(f"{page_name}: image {img['natural']} px wide, column {f['column']:.0f} px: {img['src'][:60]}")
            for k, state in enumerate(f["states"]):
                try: json.loads(state)
                except json.JSONDecodeError as e: problems.append(f"{page_name}: saved widget state {k} does not parse: {e}")
            if a.screenshots and page_name in SHOTS:
                a.screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(a.screenshots / f"{SHOTS[page_name]}.png"))
            page.close()
        browser.close()
    server.shutdown()
    for page_name, f in facts.items():
        for href in f["links"]:
            url = urlparse(urljoin(base + page_name, href))
            if url.scheme not in ("http", "https") or url.netloc != f"127.0.0.1:{port}": continue
            target = unquote(url.path.lstrip("/")) or "index.html"
            if target.endswith("/"): target += "index.html"
            if not (site / target).exists():
                problems.append(f"{page_name}: link to a missing page: {href}"); continue
            if url.fragment and target in facts and url.fragment not in facts[target]["ids"]:
                problems.append(f"{page_name}: link to a missing anchor: {href}")
    for line in cdn_errors: print(f"(CDN, not counted) {line}")
    for line in problems: print(line)
    print(f"site: {len(pages)} pages checked, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
