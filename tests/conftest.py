from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, at the top of tests/, so `pytest tests/e2e` and `pytest` both know it.
    parser.addoption(
        "--image-registry",
        default="",
        help="e2e: registry the images were pushed to (non-kind clusters); kind and k3d get them loaded instead",
    )
