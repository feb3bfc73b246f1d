"""A real headless browser for tests: Debian's chromium driven by its chromium-driver through
selenium. Nothing is downloaded: both binaries come from the system (``apt-get install
chromium chromium-driver``). Under CI=true a missing browser fails the test; elsewhere the
test is skipped."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OPTIONS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--window-size=1280,1800")


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (apt-get install chromium chromium-driver; pip install selenium)")
    pytest.skip(what)


@contextlib.contextmanager
def headless_chromium(workdir: Path) -> Iterator[Any]:
    """A selenium WebDriver on headless chromium, always quit on the way out."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _missing("chromium or chromedriver is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    options = Options()
    options.binary_location = str(chromium)
    for option in OPTIONS:
        options.add_argument(option)
    workdir.mkdir(parents=True, exist_ok=True)
    options.add_argument(f"--user-data-dir={workdir / 'profile'}")
    service = Service(executable_path=str(driver_path),
                      log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def artifacts_dir(fallback: Path) -> Path:
    """Where screenshots go: ``$ARTIFACTS_DIR`` if set, else the test's own tmp dir."""
    configured = os.environ.get("ARTIFACTS_DIR")
    path = Path(configured) if configured else fallback
    path.mkdir(parents=True, exist_ok=True)
    return path
