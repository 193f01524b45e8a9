"""The report in a real browser: headless Chromium (Debian's ``chromium``, which .ci/run installs) loads
report.html and a small script reports what a person would see go wrong: an image that does not load,
a page wider than the window, an error."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from evostyle.report.html import write_report
from evostyle.search import make_config, run_search

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI needs headless Chromium for the report test; .ci/run installs Debian's chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")

CHECK = """<script>
const errors = [];
window.addEventListener("error", e => errors.push(e.message || ("failed to load " + (e.target.src || "").slice(0, 40))),
                        true);
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const small = imgs.filter(i => i.closest("figure") && Math.max(i.width, i.height) < 256).map(i => i.alt);
  const root = document.documentElement;
  const first = document.querySelector(".pair img"), verdict = document.querySelector(".verdict");
  const sortColumn = [...document.querySelectorAll("th")].find(t => t.textContent === "fitness");
  const out = document.createElement("pre");
  out.id = "check";
  out.textContent = JSON.stringify({images: imgs.length, broken, small, errors,
                                    overflow: root.scrollWidth - root.clientWidth,
                                    firstImageTop: first ? first.getBoundingClientRect().top : null,
                                    verdictTop: verdict ? verdict.getBoundingClientRect().top : null,
                                    sortColumnRight: sortColumn ? sortColumn.getBoundingClientRect().right : null});
  document.body.appendChild(out);
});
</script></body>"""


def _check_in_browser(page, tmp_path, width: int) -> dict:
    probe = tmp_path / f"probe_{width}.html"
    probe.write_text(page.read_text().replace("</body>", CHECK))
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
                        probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="check">(.*?)</pre>', p.stdout, re.S)
    assert m, f"the page did not finish loading in Chromium: {p.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "run"
    cfg = make_config({"size": 32, "steps": 3, "popsize": 5, "outputs": 2, "maxiter": 1, "weights": "random",
                       "device": "cpu", "seed": 2, "objective": "pareto"})
    run_search(cfg, out, quiet=True, report=False)
    return write_report(out)


@pytest.mark.parametrize("width", [1280, 720])
def test_report_loads_in_chromium_every_image_shows_and_nothing_overflows(report, tmp_path, width):
    got = _check_in_browser(report, tmp_path, width)
    assert got["images"] >= 3 + 2 + 3  # inputs, best outputs, plots (and the candidates' outputs)
    assert got["broken"] == [] and got["errors"] == []
    assert got["overflow"] <= 0, f"the page is {got['overflow']} px wider than a {width} px window"
    if width == 1280:  # 32 px outputs are drawn at least 256 px on the long side
        assert got["small"] == []
    # the first screen (900 px tall): the verdict, then the best outputs beside the baseline's; the
    # candidates table's sort column in view without scrolling sideways
    assert got["verdictTop"] is not None and got["verdictTop"] < got["firstImageTop"] < 300, got
    assert got["sortColumnRight"] is not None and got["sortColumnRight"] <= width, got


def test_the_probe_would_see_a_broken_image(report, tmp_path):
    """The check itself can fail: an image whose data is cut off is reported."""
    broken = tmp_path / "broken.html"
    broken.write_text(report.read_text().replace('src="data:image/png;base64,', 'src="data:image/png;base64,AAAA', 1))
    got = _check_in_browser(broken, tmp_path, 1280)
    assert len(got["broken"]) == 1
