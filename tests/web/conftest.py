"""Fixtures of the browser tests: one running campusgate per test module (see
:mod:`tests.web.harness`); the session's Chromium is :mod:`tests.fixtures.browser`'s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.web.harness import PASSWORD, LiveSchool


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[LiveSchool]:
    """campusgate running on a fresh database and broker, for the tests of one module."""
    live = LiveSchool.create(tmp_path_factory.mktemp("live"))
    try:
        live.start()
        yield live
    finally:
        live.stop()


def sign_in(page: Page, school: LiveSchool, username: str) -> None:
    """Sign in through the login form, as a person would, and wait for the landing page."""
    page.goto(f"{school.url}/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(lambda url: "/login" not in url)


# The server tests' databases (SQLite and PostgreSQL) and school, for the roster import's tests.
from tests.server.conftest import db, db_url, engine, world  # noqa: E402, F401
