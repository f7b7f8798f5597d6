"""The reference page's "Try it out", clicked through in a headless Chromium, works unedited for the
main flow: create a resource, ask its availability, book it (the examples as written; the page
moves their days on and puts in the id just created)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException
from selenium.common.exceptions import NoSuchElementException
from selenium.common.exceptions import StaleElementReferenceException
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.serving import make_server

from tests.api.conftest import Org
from tests.api.conftest import app
from tests.api.conftest import make_org
from tests.api.conftest import org
from tests.conftest import CHROMEDRIVER
from tests.conftest import require_service

__all__ = ["app", "make_org", "org"]  # the API tests' fixtures: an app on a fresh SQLite database, an organization
pytestmark = pytest.mark.usefixtures("chromium_available")
WAIT_S = 60  # an upper bound for a page or an answer on a busy machine; met in well under a second


@pytest.fixture
def chromium_available() -> None:
    require_service("chromium")


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app on a real HTTP port of 127.0.0.1, as a browser reaches it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "chromium"
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _element(browser: WebDriver, css: str, within: WebElement | None = None) -> WebElement:
    scope = within or browser
    found: WebElement = WebDriverWait(browser, WAIT_S).until(lambda _: scope.find_element(By.CSS_SELECTOR, css))
    return found


def _click(browser: WebDriver, css: str, within: WebElement | None = None) -> None:
    """Click what `css` finds once it takes the click: found afresh on every try, since the page
    re-renders (a dialog closing, a panel opening) under a found element."""

    def clicked(_: WebDriver) -> bool:
        element = (within or browser).find_element(By.CSS_SELECTOR, css)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()
        return True

    retried = (NoSuchElementException, StaleElementReferenceException, ElementClickInterceptedException)
    WebDriverWait(browser, WAIT_S, ignored_exceptions=retried).until(clicked)


def _try_it_out(browser: WebDriver, tag: str, operation_id: str) -> tuple[str, str]:
    """Open an operation, press "Try it out" then "Execute" without editing anything; the answer's
    status and body."""
    block = _element(browser, f"#operations-{tag}-{operation_id}")
    if "is-open" not in (block.get_attribute("class") or ""):
        _click(browser, ".opblock-summary-control", block)
    if not block.find_elements(By.CSS_SELECTOR, ".try-out__btn.cancel"):  # not yet trying it out
        _click(browser, ".try-out__btn", block)
    if block.find_elements(By.CSS_SELECTOR, ".btn-clear"):  # an earlier answer: clear it, so this one is read
        _click(browser, ".btn-clear", block)
        WebDriverWait(browser, WAIT_S).until(
            lambda _: not block.find_elements(By.CSS_SELECTOR, ".live-responses-table")
        )
    _click(browser, ".execute", block)
    try:
        status = _element(browser, ".live-responses-table .response .response-col_status", block)
    except TimeoutException:
        pytest.fail(f"{operation_id}: no answer within {WAIT_S} s")
    body = _element(browser, ".live-responses-table .response .microlight", block).text
    return status.text.strip().split()[0], body


def test_create_a_resource_ask_its_availability_and_book_it_from_the_reference_page(
    served: str, browser: WebDriver, org: Org
) -> None:
    browser.get(served + "/docs")
    _click(browser, ".auth-wrapper .authorize")
    dialog = _element(browser, ".auth-container")
    _element(browser, "input", dialog).send_keys(org.token)
    _click(browser, ".auth-btn-wrapper .authorize", dialog)
    _click(browser, ".auth-btn-wrapper .btn-done", dialog)

    status, body = _try_it_out(browser, "resources", "createResource")
    assert status == "201", body
    status, body = _try_it_out(browser, "bookings", "getAvailability")
    assert status == "200", body
    assert '"remaining": 1' in body, "the example's slot is free"
    status, body = _try_it_out(browser, "bookings", "createBooking")
    assert status == "201", body
    booking = json.loads(body)
    assert booking["status"] == "pending", "a priced booking waits for its payment"
    assert booking["start"] == f"{datetime.now(UTC).date() + timedelta(days=7)}T10:00:00Z", "the example's day, moved"
    status, body = _try_it_out(browser, "bookings", "createBooking")
    assert status == "409", "the same slot again: a new booking (a new Idempotency-Key), refused, not a replay"
