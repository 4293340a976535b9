"""JobTally (leviathan_config.worker_jobs): what the sidecars keep of a list read page by page
decides exactly as the whole list sorted newest first would, in whatever order the Jobs come."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from leviathan_config.worker_jobs import RESUMED_ANNOTATION, SLOT_ANNOTATION, TASK_LABEL, JobTally

SELECTOR = {"app": "leviathan-worker"}


def job(index: int, task: str, minute: int, state: str, resumed: bool) -> dict:
    stamp = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {SLOT_ANNOTATION: stamp, **({RESUMED_ANNOTATION: "true"} if resumed else {})}
    manifest: dict = {
        "metadata": {
            "name": f"{task}-{index}",
            "uid": f"uid-{index}",
            "labels": {**SELECTOR, TASK_LABEL: task},
            "annotations": annotations,
        }
    }
    if state != "active":
        manifest["status"] = {"conditions": [{"type": state, "status": "True"}]}
    return manifest


def reference(jobs: list[dict]) -> dict[str, tuple[int, str]]:
    """The rule as written before issue 20: per task, the finished Jobs newest first, failures until a break."""
    streaks = {}
    for task in {j["metadata"]["labels"][TASK_LABEL] for j in jobs}:
        finished = [j for j in jobs if j["metadata"]["labels"][TASK_LABEL] == task and "status" in j]
        finished.sort(
            key=lambda j: (j["metadata"]["annotations"][SLOT_ANNOTATION], j["metadata"]["name"]), reverse=True
        )
        count, last = 0, ""
        for j in finished:
            failed = j["status"]["conditions"][0]["type"] == "Failed"
            if not failed or RESUMED_ANNOTATION in j["metadata"]["annotations"]:
                break
            count += 1
            last = last or j["metadata"]["name"]
        if count:
            streaks[task] = (count, last)
    return streaks


jobs_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(0, 30),
        st.sampled_from(["Failed", "Failed", "Complete", "active"]),
        st.booleans(),
    ),
    max_size=40,
)


@given(jobs_strategy, st.randoms(use_true_random=False))
def test_streaks_match_the_sorted_rule_in_any_order(specs, random):
    jobs = [job(i, task, 29_000_000 + minute, state, resumed) for i, (task, minute, state, resumed) in enumerate(specs)]
    random.shuffle(jobs)
    tally = JobTally(SELECTOR)
    for manifest in jobs:
        tally.add(manifest)
    assert tally.streaks() == reference(jobs)
    for task, (_, last) in tally.streaks().items():
        assert tally.uid_of_failed(task, last) == "uid-" + last.rsplit("-", 1)[1]
    assert tally.active_total == sum("status" not in j for j in jobs)


def test_jobs_of_other_tasks_or_labels_cost_nothing_but_the_count():
    tally = JobTally(SELECTOR, tasks=["a"], tick_job="tick-1")
    tally.add(job(1, "b", 29_000_000, "Failed", False))  # an undeclared task
    tally.add({"metadata": {"name": "other", "labels": {"app": "other"}}})
    tally.add({"metadata": {"name": "tick-1", "ownerReferences": [{"kind": "CronJob", "name": "c", "uid": "u"}]}})
    assert tally.jobs == 3
    assert tally.streaks() == {} and tally.newest_slot == {} and tally.active_by_task == {}
    assert tally.active_total == 0
    assert tally.tick_job_owners == [{"kind": "CronJob", "name": "c", "uid": "u"}]
