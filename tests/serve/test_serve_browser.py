"""A real headless Chromium (Debian's chromium + chromium-driver, through selenium) drives the app.

Filter and sort the results list, open a triple, cast ten votes by clicking, reload, and find
the votes in SQLite. Set SPF_SCREENSHOTS=DIR to keep a screenshot of every page visited.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from support.serve_runs import write_world_runs
from spf_bench.results.runs import load_runs
from spf_bench.study.db import default_db, ensure_schema
from spf_bench.study.sampling import create_study
from spf_bench.study.simulate import local_server

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="Debian's chromium and chromium-driver are not installed; "
                                       "bash scripts/setup.sh installs them when run as root")


@pytest.fixture()
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)  # the system driver, never a download
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    folder = os.environ.get("SPF_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def click_and_wait(driver, element) -> None:
    """Click something that loads a new page, and wait until the old page is gone."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def old_page_gone(_driver) -> bool:
        # selenium's staleness_of, plus the other way chromium says it: asked about a node
        # while the next document replaces it, its inspector can answer "does not belong to
        # the document" (seen once in CI under load) instead of a stale-element error.
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    WebDriverWait(driver, 60).until(old_page_gone)


def test_browse_and_vote_in_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    runs_dir = write_world_runs(tmp_path / "runs")
    db = ensure_schema(default_db(runs_dir))
    create_study(db, load_runs(runs_dir), runs_dir, "main", "ours", ["base", "naive"], per_rater=12, raters=1)
    token = sqlite3.connect(db).execute("SELECT token FROM raters").fetchone()[0]
    ours = pd.read_csv(runs_dir / "ours" / "per_pair.csv")
    with local_server(runs_dir, db) as base:
        browser.get(base + "/")
        shot(browser, "01-list")
        Select(browser.find_element(By.ID, "category")).select_by_value("appearance")
        Select(browser.find_element(By.ID, "metric")).select_by_value("CLIP-T")
        Select(browser.find_element(By.ID, "sort")).select_by_value("ours")
        Select(browser.find_element(By.ID, "order")).select_by_value("desc")
        click_and_wait(browser, browser.find_element(By.ID, "apply"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#triples tbody tr")
        expected = ours[ours["category"] == "appearance"].sort_values("CLIP-T", ascending=False)["id"].tolist()
        assert [r.get_attribute("data-id") for r in rows] == expected
        shot(browser, "02-list-filtered")
        click_and_wait(browser, rows[0].find_element(By.TAG_NAME, "a"))
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(f"Triple {expected[0]}")
        images = browser.find_elements(By.CSS_SELECTOR, "img.px")
        assert len(images) == 5 and all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
        shot(browser, "03-triple")

        browser.get(f"{base}/rate/{token}")
        shot(browser, "04-rate")
        answers = ("left", "right", "tie")
        for k in range(10):
            for j, question in enumerate(("OBC", "TAR", "AP")):
                browser.find_element(By.ID, f"{question}-{answers[(k + j) % 3]}").click()
            click_and_wait(browser, browser.find_element(By.ID, "submit"))
            assert f"{k + 1} of" in browser.find_element(By.ID, "progress").text
        browser.refresh()
        assert browser.find_element(By.ID, "progress").text.startswith("10 of 14")
        shot(browser, "05-rate-after-reload")

        browser.get(f"{base}/rate/not-a-token")
        assert "not valid" in browser.find_element(By.ID, "error").text
        shot(browser, "06-error")
    con = sqlite3.connect(db)
    votes = con.execute("SELECT c.position, v.obc, v.tar, v.ap FROM votes v JOIN comparisons c ON c.id = v.comparison_id "
                        "ORDER BY c.position").fetchall()
    con.close()
    assert votes == [(k, answers[k % 3], answers[(k + 1) % 3], answers[(k + 2) % 3]) for k in range(10)]
