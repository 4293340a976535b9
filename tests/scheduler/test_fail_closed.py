"""A config that is missing or unusable stops the tick before any API call: fail closed."""

from __future__ import annotations

import pytest
import yaml

from kubelet_volume import publish
from leviathan_config import MAX_CONFIG_BYTES

from .conftest import CONFIG_FILE, assert_no_traceback, chart_config, lines, worker_jobs

FAIL_CLOSED = "failing closed without submitting jobs"


def hand_edited(edit) -> str:
    """The chart's enabled config, parsed, changed by `edit(document)`, and written back."""
    document = yaml.safe_load(chart_config())
    edit(document)
    return yaml.safe_dump(document, sort_keys=False)


def assert_failed_closed(result, emulator, exit_code: int, *expected: str) -> None:
    assert result.returncode == exit_code, result.stderr
    [line] = lines(result.stderr)  # one clear line, nothing else
    assert line.startswith("✗ "), line
    assert line.endswith(FAIL_CLOSED), line
    for fragment in expected:
        assert fragment in line
    assert result.stdout == ""
    assert_no_traceback(result)
    assert emulator.requests() == []
    assert worker_jobs(emulator) == []


@pytest.mark.parametrize("dry_run", [False, True])
def test_config_not_mounted_exits_3(run_scheduler, emulator, config_path, dry_run):
    assert not config_path.parent.exists()
    result = run_scheduler(*(["--dry-run"] if dry_run else []))
    assert_failed_closed(result, emulator, 3, "Config not mounted", f"{config_path} does not exist")


def test_mount_without_the_environment_file_exits_3(run_scheduler, emulator, mount, config_path):
    """The ConfigMap is mounted but has no key for this environment (e.g. prod.yaml only)."""
    publish(mount, {"prod.yaml": chart_config()})
    result = run_scheduler()
    assert_failed_closed(result, emulator, 3, "Config not mounted", str(config_path))


def test_unset_variable_falls_back_to_the_default_path(run_scheduler, emulator):
    result = run_scheduler(env={"LEVIATHAN_AUTONOMY_CONFIG": None})
    assert_failed_closed(result, emulator, 3, "/etc/leviathan/autonomy/dev.yaml does not exist")


INVALID = {
    "invalid YAML": (b"autonomy_enabled: [\n", "invalid YAML"),
    "quoted false": (b'autonomy_enabled: "false"\n', "autonomy_enabled must be true or false, not the string 'false'"),
    "YAML 1.1 off": (b"autonomy_enabled: off\n", "autonomy_enabled must be true or false"),
    "YAML 1.1 no": (b"autonomy_enabled: no\n", "autonomy_enabled must be true or false"),
    "zero": (b"autonomy_enabled: 0\n", "autonomy_enabled must be true or false"),
    "null": (b"autonomy_enabled:\n", "autonomy_enabled must be true or false, not null"),
    "missing key": (b"reason: forgot the switch\n", "missing key autonomy_enabled"),
    "duplicate key": (b"autonomy_enabled: false\nautonomy_enabled: true\n", "duplicate key"),
    "a list": (b"- autonomy_enabled: true\n", "top level must be a mapping"),
    "a scalar": (b"true\n", "top level must be a mapping"),
    "empty": (b"", "empty"),
    "reason not a string": (b"autonomy_enabled: true\nreason: 42\n", "reason must be a string"),
    "not UTF-8": (b"autonomy_enabled: true\nreason: caf\xe9\n", "not valid UTF-8"),
    "over 64 KiB": (
        b"autonomy_enabled: true\n" + b"#" * MAX_CONFIG_BYTES + b"\n",
        f"larger than {MAX_CONFIG_BYTES // 1024} KiB",
    ),
    # Parsed by PyYAML, but no value can be built from them.
    "impossible date": (b"autonomy_enabled: true\nreviewed: 2024-02-30\n", "ValueError"),
    "list as a key": (b"autonomy_enabled: true\n? [a]\n: 1\n", "unhashable key"),
    "deep nesting": (b"autonomy_enabled: true\nx: " + b"[" * 3000 + b"\n", "nested deeper than 50 levels"),
}


@pytest.mark.parametrize(("body", "problem"), INVALID.values(), ids=INVALID.keys())
def test_invalid_config_exits_4(publish_config, run_scheduler, emulator, body, problem):
    publish_config(raw=body)
    result = run_scheduler()
    assert_failed_closed(result, emulator, 4, "Error reading config", problem)


def _drop_image(document):
    del document["scheduler"]["tasks"][0]["image"]


def _duplicate_task(document):
    document["scheduler"]["tasks"].append(dict(document["scheduler"]["tasks"][0]))


def _bad_name(document):
    document["scheduler"]["tasks"][0]["name"] = "Not_A_Label"


def _unknown_task_key(document):
    document["scheduler"]["tasks"][0]["replicas"] = 3


def _tasks_not_a_list(document):
    document["scheduler"]["tasks"] = {"name": "inventory"}


def _negative_limit(document):
    document["scheduler"]["maxJobsPerTick"] = -1


def _boolean_limit(document):
    document["scheduler"]["maxConcurrentWorkers"] = True


def _no_worker(document):
    del document["worker"]


def _selector_without_app(document):
    del document["worker"]["selector"]["app"]


def _env_without_name(document):
    document["scheduler"]["tasks"][1]["env"] = [{"value": "x"}]


def _zero_deadline(document):
    document["scheduler"]["tasks"][0]["activeDeadlineSeconds"] = 0


def _bad_prefix(document):
    document["worker"]["jobNamePrefix"] = "Workers_Of_Mine"


def _release_selector_missing_the_workers(document):
    document["worker"]["releaseSelector"] = {"app.kubernetes.io/instance": "another-release"}


BAD_SETTINGS = {
    "task without image": (_drop_image, "scheduler.tasks[0].image: missing"),
    "duplicate task name": (_duplicate_task, "task names must be unique, inventory repeats"),
    "task name not a DNS label": (_bad_name, "scheduler.tasks[0].name: 'Not_A_Label' is not a DNS label"),
    "unknown task key": (_unknown_task_key, "scheduler.tasks[0]: unknown key replicas"),
    "tasks not a list": (_tasks_not_a_list, "scheduler.tasks: expected a list"),
    "negative maxJobsPerTick": (_negative_limit, "scheduler.maxJobsPerTick: expected an integer of at least 0"),
    "boolean maxConcurrentWorkers": (_boolean_limit, "scheduler.maxConcurrentWorkers: expected an integer"),
    "no worker section": (_no_worker, "worker: expected a mapping"),
    "selector without app": (_selector_without_app, "worker.selector: an app label is required"),
    "env entry without name": (_env_without_name, "scheduler.tasks[1].env[0].name: missing"),
    "zero task deadline": (_zero_deadline, "tasks[0].activeDeadlineSeconds: expected an integer of at least 1"),
    "job name prefix not a DNS label": (_bad_prefix, "worker.jobNamePrefix: 'Workers_Of_Mine' is not a DNS label"),
    "release selector misses the workers": (
        _release_selector_missing_the_workers,
        "worker.releaseSelector: must be non-empty and match the worker Jobs' labels",
    ),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["tick", "dry-run"])
@pytest.mark.parametrize(("edit", "problem"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_scheduler_settings_exit_4(publish_config, run_scheduler, emulator, edit, problem, dry_run):
    publish_config(raw=hand_edited(edit))
    result = run_scheduler(*(["--dry-run"] if dry_run else []))
    assert_failed_closed(result, emulator, 4, "Error reading config", problem)


def test_unreadable_config_exits_4(publish_config, run_scheduler, emulator, config_path, mount):
    """A directory where the file should be (e.g. a subPath mount gone wrong)."""
    (mount / "..data").mkdir(parents=True)
    (mount / CONFIG_FILE).mkdir()
    result = run_scheduler()
    assert_failed_closed(result, emulator, 4, "is a directory")


def test_the_chart_config_itself_is_accepted(enabled_config, run_scheduler, emulator):
    """The control for the tests above: the unedited body does make a tick."""
    assert yaml.safe_load(hand_edited(lambda document: None)) == yaml.safe_load(enabled_config)
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    assert len(worker_jobs(emulator)) == 2
