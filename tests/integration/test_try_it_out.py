"""The reference page's "Try it out", clicked through in a headless Chromium, works unedited for the
main flow: create a resource, ask its availability, book it (the examples as written; the page
moves their days on and puts in the id just created)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ready
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
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _element(browser: WebDriver, css: str, within: WebElement | None = None) -> WebElement:
    scope = within or browser
    found: WebElement = WebDriverWait(browser, WAIT_S).until(lambda _: scope.find_element(By.CSS_SELECTOR, css))
    return found


def _click(browser: WebDriver, element: WebElement) -> None:
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    WebDriverWait(browser, WAIT_S).until(ready.element_to_be_clickable(element))
    element.click()


def _try_it_out(browser: WebDriver, tag: str, operation_id: str) -> tuple[str, str]:
    """Open an operation, press "Try it out" then "Execute" without editing anything; the answer's
    status and body."""
    block = _element(browser, f"#operations-{tag}-{operation_id}")
    if "is-open" not in (block.get_attribute("class") or ""):
        _click(browser, _element(browser, ".opblock-summary-control", block))
    _click(browser, _element(browser, ".try-out__btn", block))
    _click(browser, _element(browser, ".execute", block))
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
    _click(browser, _element(browser, ".auth-wrapper .authorize"))
    dialog = _element(browser, ".auth-container")
    _element(browser, "input", dialog).send_keys(org.token)
    _click(browser, _element(browser, ".auth-btn-wrapper .authorize", dialog))
    _click(browser, _element(browser, ".auth-btn-wrapper .btn-done", dialog))

    status, body = _try_it_out(browser, "resources", "createResource")
    assert status == "201", body
    status, body = _try_it_out(browser, "bookings", "getAvailability")
    assert status == "200", body
    assert '"remaining": 1' in body, "the example's slot is free"
    status, body = _try_it_out(browser, "bookings", "createBooking")
    assert status == "201", body
    assert '"status": "pending"' in body, "a priced booking waits for its payment"
