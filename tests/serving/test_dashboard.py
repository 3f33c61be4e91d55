"""The dashboard (`GET /`) in Debian's headless Chromium, driven by Selenium and the system
chromedriver (nothing is downloaded), against the real server and real posted observations.

The test run leaves a screenshot at test-artifacts/dashboard.png.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from deepcast.serving import dashboard

from .conftest import HEADERS, records, wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = 96  # actuals beside the forecast: the page's default


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium at 1400x1000, its console log kept (goog:loggingPrefs)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.fail(f"{path} is missing: `make test` installs Debian's chromium and driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def post(server, rows) -> dict:
    response = server.client.post(
        "/v1/models/syn/observations", json={"observations": records(rows)}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return response.json()


def next_rows(server, series: pd.DataFrame, count: int) -> pd.DataFrame:
    """The `count` rows of `series` after the newest stored one (other tests post the same
    series), or its first `count` rows when nothing is stored yet."""
    actuals = server.client.get("/v1/models/syn/monitor").json()["actuals"]
    if not actuals:
        return series.iloc[:count]
    start = series.index.get_loc(pd.Timestamp(actuals[-1]["timestamp"])) + 1
    assert start + count <= len(series), "the test series ran out"
    return series.iloc[start : start + count]


def chart(driver, name: str) -> dict:
    """What the page says it drew: the chart's data-* attributes and its plotted points."""
    return driver.execute_script(
        """
        const svg = document.getElementById(arguments[0]);
        const line = svg.querySelector("path.actual");
        const d = line ? line.getAttribute("d") : "";
        return {...svg.dataset, path: d, drawn: d ? d.split(/[ML]/).length - 1 : 0};
        """,
        name,
    )


def test_dashboard_shows_the_live_version_and_follows_new_observations(
    server, browser, serving_data
):
    series = serving_data[2]
    post(server, next_rows(server, series, 30))  # at least a lookback: a forecast exists
    live = server.client.get("/ready").json()["models"]["syn"]

    browser.get(f"{server.url}/?refresh=1")
    first = wait_for(lambda: chart(browser, "chart-forecast").get("lastActual") and
                     chart(browser, "chart-forecast"), 30, "the first drawing")  # fmt: skip
    shown = browser.find_element("id", "live-version")
    assert shown.text == live and shown.get_attribute("data-version") == live
    assert browser.find_element("id", "model").get_attribute("value") == "syn"
    stored = server.client.get("/v1/models/syn/monitor").json()["actuals"]
    assert int(first["points"]) == first["drawn"] == min(WINDOW, len(stored))

    added = next_rows(server, series, 6)
    answer = post(server, added)
    newest = answer["last_timestamp"]
    after = wait_for(lambda: (c := chart(browser, "chart-forecast"))["lastActual"] == newest and c,
                     20, "the chart to show the new observations")  # fmt: skip
    assert after["drawn"] == int(after["points"]) == min(WINDOW, len(stored) + len(added))
    assert after["path"] != first["path"] and first["lastActual"] != newest
    # The monitor forecasts from the new origin in the background; the page follows.
    wait_for(lambda: chart(browser, "chart-forecast")["origin"] == newest, 30,
             "the forecast from the newest observation")  # fmt: skip
    assert browser.find_elements("css selector", "#chart-forecast path.band")
    assert chart(browser, "chart-errors")["points"].isdigit()  # the errors chart was drawn

    ARTIFACTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(  # the whole page in one screenshot
        "Emulation.setDeviceMetricsOverride",
        {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    time.sleep(1.2)  # one more refresh: attributions and errors of the newest forecast
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000

    logs = browser.get_log("browser")
    errors = [entry for entry in logs if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_dashboard_assets_are_local_and_the_page_forbids_outside_requests(server):
    page = server.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no outside link
    for asset, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        response = server.client.get(f"/dashboard/{asset}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    assert server.client.get("/dashboard/..%2Fdashboard.py").status_code == 404
    assert server.client.get("/dashboard/index.html").status_code == 404
    paths = server.client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/dashboard") for p in paths)


def test_the_script_never_writes_markup_from_data():
    script = (dashboard.ASSETS / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
