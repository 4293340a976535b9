"""A config that is missing or unusable stops the tick before any API call: fail closed."""

from __future__ import annotations

import os

import pytest
import yaml

from support.config_cases import INVALID
from support.contract import CONFIG_PATH
from support.kubelet_volume import publish
from support.paths import PYTHON
from support.scheduler import (
    CONFIG_FILE,
    assert_no_traceback,
    chart_config,
    chart_settings,
    lines,
    settings_path_for,
    worker_jobs,
)

FAIL_CLOSED = "failing closed without submitting jobs"


def hand_edited(edit) -> str:
    """The chart's settings file (tasks, guardrails, worker), parsed, changed by `edit(document)`, and written back."""
    document = yaml.safe_load(chart_settings())
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
    assert_failed_closed(result, emulator, 3, f"{CONFIG_PATH} does not exist")


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


def _task(field, value, index=0):
    def edit(document):
        document["scheduler"]["tasks"][index][field] = value

    return edit


def _worker(field, value):
    def edit(document):
        document["worker"][field] = value

    return edit


def _set(path, value):
    def edit(document):
        *parents, last = path
        for key in parents:
            document = document[key]
        document[last] = value

    return edit


# Everything that reaches a Job manifest, refused before any API call (issue 11).
BAD_MANIFEST_FIELDS = {
    "resources typo limit": (
        _task("resources", {"limit": {"cpu": "1"}}),
        "scheduler.tasks[0].resources: unknown key limit",
    ),
    "worker resources typo": (
        _worker("resources", {"request": {"cpu": "1"}}),
        "worker.resources: unknown key request",
    ),
    "resources not a mapping": (_task("resources", ["cpu"]), "scheduler.tasks[0].resources: expected a mapping"),
    "requests not a mapping": (_task("resources", {"requests": "1"}), "resources.requests: expected a mapping"),
    "quantity in words": (
        _task("resources", {"limits": {"memory": "lots"}}),
        "scheduler.tasks[0].resources.limits.memory: 'lots' is not a quantity",
    ),
    "quantity with a space": (_task("resources", {"limits": {"memory": "1 Gi"}}), "'1 Gi' is not a quantity"),
    "quantity with a newline": (_task("resources", {"limits": {"memory": "1Gi\n"}}), "is not a quantity"),
    "negative quantity": (_task("resources", {"requests": {"cpu": "-1"}}), "'-1' is not a quantity"),
    "negative number": (_task("resources", {"requests": {"cpu": -1}}), "-1 is not a quantity of at least 0"),
    "boolean quantity": (
        _task("resources", {"requests": {"cpu": True}}),
        "resources.requests.cpu: expected a quantity",
    ),
    "unknown resource name": (
        _task("resources", {"limits": {"cpus": "1"}}),
        "scheduler.tasks[0].resources.limits: 'cpus' is not a resource name",
    ),
    "request above limit": (
        _worker("resources", {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}),
        "worker.resources.requests.memory: '1Gi' is above the limit",
    ),
    "fractional extended resource": (
        _task("resources", {"limits": {"example.com/gpu": "0.5"}}),
        "an extended resource takes a whole number",
    ),
    "image with a space": (_task("image", "busybox 1.37"), "scheduler.tasks[0].image: 'busybox 1.37' is not an image"),
    "image with a newline": (_task("image", "busybox:1.37.0\n"), "is not an image reference"),
    "image not a string": (_task("image", ["busybox"]), "scheduler.tasks[0].image: expected a string"),
    "command with a number": (_task("command", ["sleep", 5]), "scheduler.tasks[0].command: expected a list of strings"),
    "args not a list": (_task("args", "echo hi"), "scheduler.tasks[0].args: expected a list"),
    "env value a number": (
        _task("env", [{"name": "SCOPE", "value": 3}], index=1),
        "scheduler.tasks[1].env[0].value: expected a string",
    ),
    "env valueFrom": (
        _task("env", [{"name": "SCOPE", "valueFrom": {"secretKeyRef": {}}}], index=1),
        "scheduler.tasks[1].env[0].valueFrom.secretKeyRef.name: missing",
    ),
    "unknown worker key": (_worker("backofLimit", 3), "worker: unknown key backofLimit"),
    "unknown scheduler key": (_set(["scheduler", "maxJobPerTick"], 1), "scheduler: unknown key maxJobPerTick"),
    "backoffLimit past int32": (_worker("backoffLimit", 2**40), "worker.backoffLimit: expected an integer of at most"),
    "label value with a space": (
        _set(["worker", "labels", "team"], "platform sre"),
        "worker.labels.team: 'platform sre' is not a label value",
    ),
    "label key with a space": (_set(["worker", "labels", "my team"], "sre"), "worker.labels: 'my team' is not a label"),
    "pull secret name": (_worker("imagePullSecrets", ["Reg_Cred"]), "'Reg_Cred' is not a Secret name"),
    # `$` matched before a trailing newline: patterns must match whole names (issue 11, item 4).
    "task name with a trailing newline": (
        _task("name", "inventory\n"),
        "scheduler.tasks[0].name: 'inventory\\n' is not a DNS label",
    ),
    "job name prefix with a trailing newline": (
        _worker("jobNamePrefix", "leviathan-worker\n"),
        "worker.jobNamePrefix: 'leviathan-worker\\n' is not a DNS label",
    ),
    "env name with a trailing newline": (
        _task("env", [{"name": "SCOPE\n", "value": "x"}], index=1),
        "scheduler.tasks[1].env[0].name: 'SCOPE\\n' is not a valid variable name",
    ),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["tick", "dry-run"])
@pytest.mark.parametrize(("edit", "problem"), BAD_MANIFEST_FIELDS.values(), ids=BAD_MANIFEST_FIELDS.keys())
def test_every_manifest_field_is_checked_before_any_call(
    publish_config, run_scheduler, emulator, edit, problem, dry_run
):
    publish_config(settings=hand_edited(edit))
    result = run_scheduler(*(["--dry-run"] if dry_run else []))
    assert_failed_closed(result, emulator, 4, "Error reading config", problem)


GOOD_RESOURCES = [
    {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "0.5Gi"}},
    {"requests": {"cpu": 0.25, "memory": "1e8", "ephemeral-storage": "1G"}, "limits": {"cpu": 2}},
    {"limits": {"example.com/gpu": "1", "hugepages-2Mi": "4Mi"}, "requests": {"example.com/gpu": 1}},
    {},
]


@pytest.mark.parametrize("resources", GOOD_RESOURCES)
def test_valid_resources_reach_the_job(publish_config, run_scheduler, emulator, resources):
    """Numbers (`cpu: 2`, as toYaml renders an unquoted value) become quantity strings, as the client needs."""
    publish_config(settings=hand_edited(_task("resources", resources)))
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    [job] = [j for j in worker_jobs(emulator) if j["metadata"]["labels"]["leviathan.io/task"] == "inventory"]
    as_strings = {part: {name: str(q) for name, q in quantities.items()} for part, quantities in resources.items()}
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"] == as_strings


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
    publish_config(settings=hand_edited(edit))
    result = run_scheduler(*(["--dry-run"] if dry_run else []))
    assert_failed_closed(result, emulator, 4, "Error reading config", problem)


@pytest.mark.parametrize("dry_run", [False, True], ids=["tick", "dry-run"])
def test_an_enabled_tick_without_its_settings_file_exits_4(run_scheduler, emulator, mount, config_path, dry_run):
    """The switch says on but the settings ConfigMap is not mounted: nothing to read the tasks from (issue 19)."""
    publish(mount, {CONFIG_FILE: chart_config()})
    result = run_scheduler(*(["--dry-run"] if dry_run else []))
    missing = f"settings file {settings_path_for(config_path)} does not exist"
    assert_failed_closed(result, emulator, 4, "Error reading config", missing)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("scheduler: [\n", "invalid YAML in"),
        ("scheduler:\n  maxJobsPerTick: 1\n  maxJobsPerTick: 2\n", "duplicate key 'maxJobsPerTick'"),
        ("- scheduler\n", "the top level must be a mapping"),
        (b"scheduler: {}\n\xff\n", "is not valid UTF-8"),
    ],
    ids=["invalid YAML", "duplicate key", "not a mapping", "not UTF-8"],
)
def test_an_unusable_settings_file_exits_4(publish_config, run_scheduler, emulator, config_path, settings, problem):
    publish_config(settings=settings)
    result = run_scheduler()
    assert_failed_closed(result, emulator, 4, "Error reading config", str(settings_path_for(config_path)), problem)


def test_unreadable_config_exits_4(publish_config, run_scheduler, emulator, config_path, mount):
    """A directory where the file should be (e.g. a subPath mount gone wrong)."""
    (mount / "..data").mkdir(parents=True)
    (mount / CONFIG_FILE).mkdir()
    result = run_scheduler()
    assert_failed_closed(result, emulator, 4, "is a directory")


@pytest.mark.parametrize("dry_run", [False, True], ids=["tick", "dry-run"])
def test_a_fifo_config_fails_closed_at_once(run_scheduler, emulator, mount, dry_run):
    """Opening a FIFO for reading waits for a writer: the tick must not hang on it (issue 11)."""
    (mount / "..data").mkdir(parents=True)
    os.mkfifo(mount / "..data" / CONFIG_FILE)
    (mount / CONFIG_FILE).symlink_to(f"..data/{CONFIG_FILE}")
    result = run_scheduler(*(["--dry-run"] if dry_run else []), timeout=20)
    assert_failed_closed(result, emulator, 4, f"{mount / CONFIG_FILE} is a FIFO, not a regular file")


def test_a_device_config_fails_closed(run_scheduler, emulator):
    result = run_scheduler(env={"LEVIATHAN_AUTONOMY_CONFIG": "/dev/zero"}, timeout=20)
    assert_failed_closed(result, emulator, 4, "/dev/zero is a character device, not a regular file")


def test_out_of_file_descriptors_fails_closed(enabled_config, run_scheduler, emulator):
    """A passing error still fails the tick closed: only the control plane keeps a last good snapshot."""
    exhaust = (  # shutil: argparse imports it lazily, and importing needs a descriptor
        "import resource, shutil, sys; from leviathan_scheduler.cli import main; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (3, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "sys.exit(main())"
    )
    result = run_scheduler(command=[str(PYTHON), "-c", exhaust])
    assert_failed_closed(result, emulator, 4, "Error reading config", "Too many open files")


def test_the_chart_config_itself_is_accepted(enabled_config, run_scheduler, emulator, config_path):
    """The control for the tests above: the unedited settings do make a tick."""
    published = settings_path_for(config_path).read_text()
    assert yaml.safe_load(hand_edited(lambda document: None)) == yaml.safe_load(published)
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    assert len(worker_jobs(emulator)) == 2
