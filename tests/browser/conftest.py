"""Shared browser fixtures: the app as a real subprocess on a free port, and headless Debian chromium.

Usage in a test module (mark it ``pytestmark = pytest.mark.browser``)::

    def test_something(start_app, page, db_url, data_dir):
        url = start_app(db_url, data_dir)      # app.py --db ... --data-dir ... on a free port
        page.goto(url)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RBFT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"app did not answer at {url} within {timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the app runs in its own session: its group is only its own
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def start_app(tmp_path):
    """``start_app(db_url, data_dir, timeout_s=120, python_path=()) -> base URL``; every app started is stopped
    after the test. ``python_path`` folders go before the repository on the app's (and its jobs') PYTHONPATH, e.g.
    one holding a ``sitecustomize.py`` test double. ``start_app.kill(url)`` kills one with SIGKILL, as a crash
    would."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(db_url: str, data_dir: Path, timeout_s: float = 120.0, python_path: tuple = ()) -> str:
        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([*map(str, python_path), str(REPO_ROOT)]),
                   RBFT_DATA_DIR=str(data_dir))
        command = [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(port), "--db", db_url,
                   "--data-dir", str(data_dir)]
        log_path = tmp_path / f"app-{port}.log"
        log = open(log_path, "w")
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        started.append((proc, log))
        url = f"http://127.0.0.1:{port}/"
        _wait_until_up(url, proc, log_path, timeout_s)
        return url

    def kill(url: str) -> None:
        """kill -9 the app serving ``url`` (its detached jobs live on, as after a crash)."""
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        for proc, _log in started:
            if f"--port {port} " in " ".join(map(str, proc.args)) + " " and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    start.kill = kill
    yield start
    for proc, log in started:
        _stop(proc)
        log.close()


def browser_required() -> bool:
    """On CI (``CI=true``) and under ``make test`` (``RBFT_TEST_BROWSER_REQUIRED=1``) a missing browser fails."""
    return os.environ.get("CI", "").lower() in ("true", "1") or os.environ.get("RBFT_TEST_BROWSER_REQUIRED") == "1"


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through playwright (no browser download); skipped when it is missing, except
    on CI and under make test, where the browser tests must run (as RBFT_TEST_PG_REQUIRED does for PostgreSQL)."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing; install it with `apt-get install chromium` (make test does)"
        if browser_required():
            pytest.fail(message + " -- the browser tests are required here (CI=true or RBFT_TEST_BROWSER_REQUIRED=1)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (own cookies, downloads allowed) and page per test."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
