"""The retry budget belongs to the whole tick, and counts only time lost to failures."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from leviathan_scheduler.kube import ApiFailure, JobsApi


class FakeClock:
    """Stands in for time.sleep, so the budget is spent on paper, not in wall time."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def failing(times: int):
    """A request that answers 500 `times` times, then succeeds."""
    calls = {"count": 0}

    def request(timeout):
        calls["count"] += 1
        if calls["count"] <= times:
            raise ApiException(status=500, reason="Internal Server Error")
        return "ok"

    return request


def jobs_api(budget: float, clock: FakeClock) -> JobsApi:
    return JobsApi(client.ApiClient(client.Configuration()), "leviathan", budget, sleep=clock.sleep)


def test_one_budget_across_calls():
    clock = FakeClock()
    api = jobs_api(4.0, clock)
    assert api._call("list", failing(3)) == "ok"  # pauses 0.5 + 1 + 2 = 3.5 of the 4 s
    with pytest.raises(ApiFailure) as refused:
        api._call("create", failing(10))
    assert refused.value.exit_code == 5
    assert sum(clock.pauses) <= 4.0
    assert "gave up after" in refused.value.message


def test_a_healthy_call_spends_nothing():
    clock = FakeClock()
    api = jobs_api(2.0, clock)
    for _ in range(100):
        assert api._call("create", failing(0)) == "ok"
    assert api._call("create", failing(1)) == "ok"  # a late failure still gets its retry
    assert clock.pauses == [0.5]


@pytest.mark.parametrize("budget", ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "-0.5", "soon"])
def test_a_budget_that_is_not_a_finite_number_is_refused(enabled_config, run_scheduler, emulator, budget):
    """nan never compares as spent, so it would retry forever (issue 11)."""
    result = run_scheduler(f"--retry-budget={budget}")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"leviathan-scheduler: error: argument --retry-budget: {budget!r} is not a finite number of seconds (0 or more)"
    )
    assert emulator.requests() == []


@pytest.mark.parametrize("budget", ["0", "2.5", "30"])
def test_finite_budgets_are_accepted(enabled_config, run_scheduler, budget):
    assert run_scheduler("--retry-budget", budget).returncode == 0
