"""Headless Chromium from Debian's packages (/usr/bin/chromium, /usr/bin/chromedriver), driven by Selenium.

Nothing is downloaded: Selenium Manager is bypassed by naming both binaries. A browser that cannot
start fails the test; it is never skipped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 800


@contextmanager
def chromium(width: int = WIDTH, height: int = HEIGHT) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as error:
        pytest.fail(f"headless Chromium ({CHROMIUM}, {CHROMEDRIVER}) did not start: {error}", pytrace=False)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def served(make_app: Callable[[], web.Application]) -> Iterator[str]:
    """Runs the app on a free loopback port in a thread of its own; yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> web.AppRunner:
        runner = web.AppRunner(make_app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        box["runner"] = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="web-app", daemon=True)
    thread.start()
    if not ready.wait(10):
        pytest.fail("the web app did not start", pytrace=False)
    try:
        yield str(box["url"])
    finally:
        runner = box["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def wait_for(predicate: Callable[[], object], within: float = 10, what: str = "the condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        time.sleep(0.05)


def click(driver: WebDriver, css: str, within: float = 5) -> None:
    """Clicks the element, found again if the live list replaced it meanwhile."""
    deadline = time.monotonic() + within
    while True:
        try:
            driver.find_element("css selector", css).click()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sign_in(driver: WebDriver, base_url: str, user: str, password: str) -> None:
    if "/login" not in driver.current_url:
        driver.get(f"{base_url}/login")
    driver.find_element("id", "username").send_keys(user)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("css selector", "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements("css selector", "body.signed-in"), what="signed in")


def screenshot(driver: WebDriver, path: Path, full_height: bool = True) -> None:
    """The page at WIDTH wide: the whole page, or the first HEIGHT pixels (what a screen shows)."""
    frame = driver.execute_script("return [window.outerWidth - innerWidth, window.outerHeight - innerHeight]")
    height = driver.execute_script("return document.documentElement.scrollHeight") if full_height else HEIGHT
    driver.set_window_size(WIDTH + int(frame[0]), int(height) + int(frame[1]))
    driver.save_screenshot(str(path))
