"""The documentation site as a reader sees it: built, served on localhost and every page
opened in headless Chromium (sampling tier).

A page fails on a console error or an uncaught exception, a request that failed or
answered 4xx/5xx, an image that did not load or is tiny, a notebook page without a
plot, math left unrendered (``$$``, ``\\(`` or ``\\[`` in the text outside code, or
math with no MathJax output) or a raw Sphinx role (``:class:`...```). Nothing is
fetched from outside: MathJax is served with the site.

Needs Chromium (Debian: ``apt-get install -y chromium``) and Playwright (``pip install
playwright``; no browser download: it drives /usr/bin/chromium). A full-page screenshot
of each page goes to ``docs-screenshots/`` (ignored by git; ``BAYESLMM_SCREENSHOTS``
moves it).

    python -m pytest -m slow tests/test_browser.py
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install -y chromium"),
]
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

#: visible text, code and scripts left out, and what it must not contain
_TEXT_JS = """() => {
  const body = document.querySelector('.md-content') || document.body;
  const copy = body.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight')
      .forEach(e => e.remove());
  return copy.textContent;
}"""
_IMAGES_JS = """() => Array.from(document.querySelectorAll('.md-content img')).map(
  i => ({src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth,
         h: i.naturalHeight}))"""
RAW_MATH = re.compile(r"\$\$|\\\(|\\\[|\\begin\{")
RAW_ROLE = re.compile(r":(class|mod|func|meth|attr|data):`")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                            str(out)], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS[1:], headless=True)
        yield b
        b.close()


def _pages(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out).parent).replace(".", "") for p in out.rglob(
        "index.html") if "assets" not in p.parts and "search" not in p.parts)


PAGES = ["", "calibration", "formula", "residuals", "priors", "marginal", "lme4", "bambi",
         "analysis", "api",
         *[f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("*.py"))
           if p.stem != "build"]]


def test_every_page_is_checked(site):
    out, _ = site
    assert sorted(p.strip("/") for p in _pages(out)) == sorted(PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[p or "index" for p in PAGES])
def test_page_in_chromium(page, site, browser):
    out, base = site
    problems: list[str] = []
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    tab.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
           if r.status >= 400 else None)
    tab.goto(f"{base}/{page}/" if page else f"{base}/", wait_until="networkidle")
    # MathJax is on every page: wait for its typesetting, then no delimiter may be left
    tab.wait_for_function("() => window.MathJax && MathJax.startup && "
                          "MathJax.startup.promise", timeout=20_000)
    tab.evaluate("() => MathJax.startup.promise")
    if tab.evaluate("() => document.querySelector('.arithmatex') !== null"):
        assert tab.evaluate("() => document.querySelectorAll('mjx-container').length") > 0, \
            "math on the page, but MathJax rendered none"
    text = tab.evaluate(_TEXT_JS)
    raw = RAW_MATH.search(text)
    assert raw is None, f"unrendered math near {text[max(0, raw.start() - 60):raw.end() + 60]!r}"
    role = RAW_ROLE.search(text)
    assert role is None, f"raw Sphinx role near {text[role.start():role.end() + 60]!r}"
    images = tab.evaluate(_IMAGES_JS)
    bad = [i["src"][:80] for i in images if not i["complete"] or i["w"] < 50 or i["h"] < 50]
    assert not bad, f"images missing or empty: {bad}"
    if page.startswith("notebooks/") or page == "analysis":
        assert images, "no plot on the page"
    shots = Path(os.environ.get("BAYESLMM_SCREENSHOTS", ROOT / "docs-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(shots / f"{(page or 'index').replace('/', '-')}.png"),
                   full_page=True)
    tab.close()
    assert not problems, "\n".join(problems)
