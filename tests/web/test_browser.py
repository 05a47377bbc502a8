"""The code owners' page and the build report in a real headless browser: Debian's chromium
driven through its chromedriver by Selenium, against `corpus serve`'s application run by
uvicorn on a free localhost port. One server and one browser for the module.

`make test` installs chromium and chromium-driver with apt-get (as root); without them these
tests are skipped with the reason. Screenshots go to CORPUS_SCREENSHOT_DIR when it is set
(`CORPUS_SCREENSHOT_DIR=docs` renews the README's pictures), else to the test's folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from manifests import optout
from pipeline import search
from pipeline.cli import main
from pipeline.web import ServeConfig, create_app
from tests.web.conftest import DROPPED_REPO, HOSTILE_PATH, HOSTILE_REPO, KEPT_REPO, ROWS, near_copy

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: pip install -e '.[test]'")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("no chromium and chromedriver on PATH: `make test` installs Debian's chromium and chromium-driver "
                "with apt-get when run as root; install them to run the browser tests", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def site(corpus):
    import uvicorn

    registry = corpus.root / "browser-optout.jsonl"
    app = create_app(ServeConfig(search.open_builds([corpus.out, corpus.second]), registry=registry,
                                 rate_limit=10_000))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{server.config.port}", registry
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CORPUS_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def submit(browser, button: str) -> None:
    """Click a form's button and wait for the page it leads to: a click returns before the
    browser has navigated, and a look right after it may still see the old page."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(browser, 30).until(lambda _: left_the_document(old))
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")


def left_the_document(element) -> bool:
    """Selenium's `staleness_of`, also when chromedriver, asked in the middle of a
    navigation, answers that the node no longer belongs to the document (an unknown error
    instead of a stale element)."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as err:
        if "does not belong to the document" in str(err):
            return True
        raise
    return False


def search_for(browser, base: str, text: str, by: str) -> None:
    browser.get(base + "/")
    browser.find_element(By.NAME, "q").send_keys(text)
    browser.find_element(By.CSS_SELECTOR, f"select[name=by] option[value={by}]").click()
    submit(browser, "form.search button")


def no_alert(browser) -> bool:
    try:
        alert = browser.switch_to.alert
    except NoAlertPresentException:
        return True
    alert.dismiss()
    return False


def test_search_finds_a_kept_repository_and_a_dropped_one_with_its_reason(site, browser, shots):
    base, _ = site
    search_for(browser, base, "octo", "owner")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.build-result")
    assert [s.get_attribute("data-build") for s in sections] == ["corpus", "corpus-v2"]
    repos = sections[0].find_elements(By.CSS_SELECTOR, "table.repos tr.kept td.repo")
    assert [r.text for r in repos] == [KEPT_REPO]
    assert len(sections[0].find_elements(By.CSS_SELECTOR, "table.files tr.kept")) == 4
    browser.save_screenshot(str(shots / "serve.png"))
    search_for(browser, base, DROPPED_REPO, "repo")
    row = browser.find_element(By.CSS_SELECTOR, "table.files tr.dropped")
    assert row.find_element(By.CSS_SELECTOR, "code.reason").text == "license_not_allowed"
    assert "fails the allowlist" in row.text


def test_pasting_a_near_copy_of_a_kept_file_finds_it(site, browser):
    base, _ = site
    browser.get(base + "/")
    # set as a paste would (typing 3 KB key by key takes seconds); the form still sends CRLF line endings
    browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.NAME, "content"),
                           near_copy(ROWS[0]["content"]))
    submit(browser, "form.paste button")
    first = browser.find_element(By.CSS_SELECTOR, "section.build-result")
    assert "No exact copy in corpus" in first.text
    near = first.find_elements(By.CSS_SELECTOR, "table.files tr.kept")
    assert near and ROWS[0]["path"].split("/")[-1] in near[0].text and "%" in near[0].text


def test_an_optout_request_is_pending_until_review_accepts_it(site, browser):
    base, registry = site
    browser.get(f"{base}/optout?kind=repo&value={KEPT_REPO}")
    assert browser.find_element(By.ID, "value").get_attribute("value") == KEPT_REPO
    browser.find_element(By.ID, "contact").send_keys("octo@example.com")
    browser.find_element(By.ID, "reason").send_keys("please leave my code out")
    submit(browser, "form.optout button")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Request received"
    assert browser.find_element(By.CSS_SELECTOR, "dd.status").text == "pending"
    request_id = browser.find_element(By.CSS_SELECTOR, "code.request-id").text
    assert not registry.exists()
    assert main(["optout", "review", "--registry", str(registry), "--accept", request_id, "--by", "maintainer"]) == 0
    (entry,) = optout.load(registry)
    assert entry.value == KEPT_REPO and entry.accepted_by == "maintainer"


def test_a_repository_named_with_html_is_shown_as_text(site, browser):
    base, _ = site
    search_for(browser, base, "evil", "owner")
    assert browser.find_element(By.CSS_SELECTOR, "table.repos td.repo").text == HOSTILE_REPO
    assert browser.find_element(By.CSS_SELECTOR, "table.files span.path").text == HOSTILE_PATH
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == [] and no_alert(browser)


def test_the_report_opens_with_every_chart_drawn(site, browser, shots):
    base, _ = site
    browser.get(base + "/builds/corpus/report.html")
    expected = int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-charts"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        drawn = browser.execute_script("""return [...document.querySelectorAll('div.plotly-graph-div')].map(div =>
            div.querySelectorAll('svg.main-svg').length > 0 && div.querySelector('g.cartesianlayer') !== null)""")
        if len(drawn) == expected and all(drawn):
            break
        time.sleep(0.2)
    assert len(drawn) == expected == 10 and all(drawn), drawn
    bars = browser.execute_script("return document.querySelectorAll('#chart-languages g.point').length")
    assert bars >= 1  # a chart with its data drawn, not only its axes
    browser.set_window_size(1280, 2400)  # the numbers and the first charts in one picture
    try:
        browser.save_screenshot(str(shots / "report.png"))
    finally:
        browser.set_window_size(1280, 1000)
    assert (shots / "report.png").stat().st_size > 10_000
