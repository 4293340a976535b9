"""The Job list read page by page (limit/continue), each Job reduced as it arrives (issue 20).

kmock does not page, so these answer the list with pages of their own, chosen by the
request's `continue`. A list that cannot be read to its last page fails the tick closed:
nothing is submitted, one line says why.
"""

from __future__ import annotations

import kmock

from leviathan_config.job_list import PAGE_SIZE
from support.emulator import job_list
from support.scheduler import (
    assert_no_traceback,
    failed_job,
    job_name,
    lines,
    owner_reference,
    tick_job,
    worker_jobs,
)

JOBS = kmock.resource("batch/v1/jobs")
ON_LIST = (kmock.action.LIST, JOBS)
EXIT_API_REJECTED = 7


def paged(pages: list[list[dict]], gone_at: int | None = None, repeat_token: bool = False):
    """A list reaction answering page n+1 to `continue: page-n`; 410 Gone for page `gone_at`."""

    def answer(request: kmock.Request):
        token = request.params.get("continue") or ""
        index = int(token.removeprefix("page-")) if token else 0
        if gone_at is not None and index == gone_at:
            status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"}
            return kmock.Response(status=410, payload=status)
        body = job_list(pages[index])
        if index + 1 < len(pages):
            body["metadata"] = {"continue": token if repeat_token and token else f"page-{index + 1}"}
        return body

    return answer


def running(task: str, slot: int) -> dict:
    manifest = failed_job(task, slot)
    del manifest["status"]
    return manifest


def test_every_page_is_read_and_decisions_span_pages(enabled_config, run_scheduler, emulator, slot):
    # inventory: a success, then three failures spread over three pages (newest first on page 1): paused.
    # index: still running on the last page, so not submitted again. The tick's own Job (its owner) on page 2.
    pages = [
        [failed_job("inventory", slot - 5), failed_job("inventory", slot - 40, condition="Complete")],
        [tick_job(slot), failed_job("inventory", slot - 10)],
        [failed_job("inventory", slot - 15), running("index", slot - 5)],
    ]
    emulator.react(lambda k: k[ON_LIST] << paged(pages))
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    assert lines(result.stderr)[0] == (
        f"⏸ Task inventory paused after 3 consecutive failures (last: {job_name('inventory', slot - 5)})"
    )
    assert "active workers before the tick 1/" in lines(result.stderr)[-1]
    assert "skipped 2 (1 already has an active Job, 1 paused after failures)" in lines(result.stderr)[-1]
    assert worker_jobs(emulator) == []  # nothing new: one task paused, one running
    listed = emulator.params("LIST")
    assert [p.get("continue") for p in listed] == [None, "page-1", "page-2"]
    assert {p["limit"] for p in listed} == {str(PAGE_SIZE)}
    assert_no_traceback(result)


def test_the_owner_found_on_a_later_page_is_used(enabled_config, run_scheduler, emulator, slot):
    pages = [[failed_job("inventory", slot - 5, condition="Complete")], [], [tick_job(slot)]]
    emulator.react(lambda k: k[ON_LIST] << paged(pages))
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    created = emulator.bodies("CREATE")
    assert len(created) == 2
    assert all(body["metadata"]["ownerReferences"] == [owner_reference()] for body in created)


def test_an_expired_continue_token_fails_closed(enabled_config, run_scheduler, emulator, slot):
    pages = [[failed_job("inventory", slot - 5, condition="Complete")], [tick_job(slot)], []]
    emulator.react(lambda k: k[ON_LIST] << paged(pages, gone_at=2))
    result = run_scheduler()
    assert result.returncode == EXIT_API_REJECTED
    assert (
        "✗ Kubernetes API answered list batch/jobs in namespace leviathan with 410 Gone: the list changed too much "
        "while it was read page by page (its continue token expired); the tick has not seen every Job, so it "
        "submits nothing (the next tick lists again)"
    ) in lines(result.stderr)
    assert lines(result.stderr)[-1].startswith("✗ Tick stopped: submitted 0, already existed 0")
    assert emulator.bodies("CREATE") == []
    assert len(emulator.params("LIST")) == 3  # a 410 is not retried: the token will not come back
    assert_no_traceback(result)


def test_a_server_that_repeats_its_continue_token_fails_closed(enabled_config, run_scheduler, emulator, slot):
    pages = [[tick_job(slot)], [], [], []]
    emulator.react(lambda k: k[ON_LIST] << paged(pages, repeat_token=True))
    result = run_scheduler()
    assert result.returncode == EXIT_API_REJECTED
    assert (
        "✗ Kubernetes API answered list batch/jobs with something that is not a Job list "
        "(the API server answered page 2 with the continue token it was sent)"
    ) in lines(result.stderr)
    assert emulator.bodies("CREATE") == []
    assert_no_traceback(result)


def test_a_job_with_a_huge_annotation_is_read_like_any_other(enabled_config, run_scheduler, emulator, slot):
    bulky = [failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)]
    for manifest in bulky:
        manifest["metadata"]["annotations"]["example.com/blob"] = "x" * 1_000_000
    emulator.seed(*bulky)
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    assert lines(result.stderr)[0].startswith("⏸ Task inventory paused after 3 consecutive failures")
