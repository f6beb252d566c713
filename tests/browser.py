"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium, and an ``rrx inspect``
server, for the Model Inspector's end-to-end tests.

Without Chromium, chromedriver, selenium or streamlit the tests are skipped with the reason and the command that
installs them; ``RRX_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns that skip into a failure, so CI never passes
without having run them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from runner import REPO

INSTALL = "apt-get install chromium chromium-driver (as root; `make test-all` does it when run as root)"


def require_browser() -> tuple[str, str]:
    """The Chromium and chromedriver executables, or a skip (a failure under RRX_REQUIRE_BROWSER) saying why."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, found in (("chromium", chromium), ("chromedriver", driver)) if not found]
    missing += [
        f"python package {p}"
        for p in ("selenium", "streamlit", "streamlit_drawable_canvas")
        if importlib.util.find_spec(p) is None
    ]
    if missing:
        reason = f"browser tests need {', '.join(missing)}: {INSTALL}; pip install 'rrx[test]'"
        if os.environ.get("RRX_REQUIRE_BROWSER"):
            pytest.fail(f"RRX_REQUIRE_BROWSER is set and {reason}")
        pytest.skip(reason)
    return chromium, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 60.0, what: str = "the page"):
    """Poll ``condition()`` until it returns something truthy (errors of a page being redrawn count as not yet)."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (WebDriverException, AssertionError, IndexError, KeyError, ValueError) as err:
            last = err
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


def click(find, what: str = "the page") -> None:
    """Click the element ``find()`` returns once it takes the click: Streamlit redraws the page after every input,
    which can replace an element or leave it not yet interactable for a moment (both retried, as by ``wait_for``)."""

    def attempt():
        find().click()
        return True

    wait_for(attempt, what=what)


class Server:
    """``rrx inspect <args>`` on a free loopback port, in its own process, stopped with SIGTERM."""

    def __init__(self, args: list[str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rrx", "inspect", *args, f"inspector.port={self.port}"],
            cwd=REPO,
            env=env,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self._healthy, timeout=120, what=f"rrx inspect on port {self.port} (log: {log})")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"rrx inspect exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                return response.read() == b"ok"
        except OSError:
            return False

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def chrome(chromium: str, driver: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,2000",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def read_table(element) -> list[dict]:
    """The rows of a Streamlit ``st.table`` as dicts, header -> cell text."""
    from selenium.webdriver.common.by import By

    headers = [h.text.strip() for h in element.find_elements(By.CSS_SELECTOR, "thead th")]
    rows = []
    for row in element.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = [c.text.strip() for c in row.find_elements(By.CSS_SELECTOR, "th, td")]
        rows.append(dict(zip(headers[-len(cells) :], cells)))
    return rows
