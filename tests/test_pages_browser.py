"""The close-out page in a real browser: Debian's headless Chromium driven by Selenium through
chromedriver (both installed by `make`'s setup; nothing is downloaded here). The therapist opens
the link from their notification on a phone-sized screen, sends the form once without an
outcome (the page names the field, the case stays open), fills it in with the keyboard and
submits; the case is closed in Temporal and in the case store."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from models.answers import CaseOutcome
from service.page_links import page_links
from store.case_store import CaseStore
from tests import directory_data
from tests.harness import harness
from tests.test_pages import LINKS, link_in
from web.app import create_app
from web.pages import PageDeps
from web.serve import free_port, serving

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def chromium(tmp_path: Path) -> webdriver.Chrome:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail(
            "chromium and chromedriver are needed: `make setup` installs them "
            "(apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=390,844",  # a phone
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def close_out_in_the_browser(link: str, tmp_path: Path) -> dict[str, str]:
    """What a therapist does on the page (blocking: run in a thread, the server keeps serving)."""
    driver = chromium(tmp_path)
    driver.implicitly_wait(5)
    wait = WebDriverWait(driver, 30, ignored_exceptions=[NoSuchElementException])
    try:
        driver.get(link)
        seen = {"title": driver.title, "page": driver.find_element(By.TAG_NAME, "main").text}
        driver.find_element(By.ID, "note").send_keys("Reached by phone; safe, was unwell.")
        driver.find_element(By.ID, "close-out").click()  # no outcome, no plan, no fee yet
        seen["refused"] = wait.until(lambda d: d.find_element(By.ID, "errors")).text
        Select(driver.find_element(By.ID, "outcome")).select_by_value("reached_safe")
        driver.find_element(By.ID, "follow_up_plan").send_keys("Keep Thursday's session.")
        driver.find_element(By.ID, "materials").send_keys("Sleep diary until Thursday.")
        waive = driver.find_element(By.ID, "fee-waive")
        waive.send_keys(Keys.SPACE)  # the keyboard selects a radio button
        reason = driver.find_element(By.ID, "fee_reason")
        reason.send_keys("illness", Keys.ENTER)  # Enter submits the form
        wait.until(lambda d: d.title == "Case closed")  # the answer's page has loaded
        seen["answer"] = driver.find_element(By.TAG_NAME, "main").text
        driver.get(link)
        seen["again"] = driver.find_element(By.TAG_NAME, "main").text
        return seen
    finally:
        driver.quit()


async def test_the_therapist_closes_a_case_in_a_real_browser(
    time_skipping_env: WorkflowEnvironment, sqlite_store: CaseStore, tmp_path: Path
) -> None:
    port = free_port("127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    async with harness(time_skipping_env, sqlite_store, **{**LINKS, "public_base_url": base}) as h:
        handle = await h.start()
        await h.awaiting_close_out(handle)
        email = h.providers.to(directory_data.THERAPIST.email)[-1].body
        link = base + link_in(email.replace(base, "http://127.0.0.1:8000"), "/case/")
        app = create_app(h.settings, PageDeps(h.service, page_links(h.settings), h.settings))
        async with serving(app, "127.0.0.1", port):
            seen = await asyncio.to_thread(close_out_in_the_browser, link, tmp_path)
        resolution = await handle.result()
        described = await handle.describe()
    stored = await sqlite_store.get_case(handle.id)

    assert seen["title"] == f"Case {handle.id}"
    assert "What happened" in seen["page"] and "Attendance, last 90 days" in seen["page"]
    assert "outcome: choose an outcome" in seen["refused"]
    assert "follow up plan: write the follow-up plan" in seen["refused"]
    assert "closed as reached_safe" in seen["answer"]
    assert "This case is already closed" in seen["again"]
    assert described.status is WorkflowExecutionStatus.COMPLETED
    assert (resolution.outcome, resolution.closed_by) == (CaseOutcome.reached_safe, "T1")
    assert resolution.note == "Reached by phone; safe, was unwell."
    assert resolution.client_materials == "Sleep diary until Thursday."
    assert resolution.fee.reason.endswith("illness")
    assert stored is not None and stored.outcome == "reached_safe" and stored.closed_at
