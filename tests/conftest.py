from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Property tests check behaviour, never speed: on a loaded CI machine input generation can be slow,
# and a deadline or a "too slow" health check would fail a correct run.
settings.register_profile("leviathan", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("leviathan")


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, at the top of tests/, so `pytest tests/e2e` and `pytest` both know it.
    parser.addoption(
        "--image-registry",
        default="",
        help="e2e: registry the images were pushed to (non-kind clusters); kind and k3d get them loaded instead",
    )
