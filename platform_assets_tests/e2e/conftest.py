"""Fixtures of the end-to-end tests."""

import pytest

from platform_assets_tests.e2e.browser import chromium


@pytest.fixture
def browser():
    yield from chromium()
