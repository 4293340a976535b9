"""Issue 14 on a real API server: anyone on call may pull the brake, only a releaser may release it.

The ValidatingAdmissionPolicy of chart/templates/release-policy.yaml is evaluated by the API
server itself, so every path is covered: `kubectl edit` (run for real, with a sed as the
editor), `kubectl patch` and `helm upgrade`, each as an impersonated user the admin names:

  alice   groups oncall, deployers   may update the switch and the CronJob, may run helm; no releaser
  bob     groups oncall, release-owners                                 a releaser by group
  system:serviceaccount:leviathan:release-bot                           a releaser by ServiceAccount
  admin   system:masters (no impersonation)                              not listed: no releaser either
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest

from support.cluster import (
    CONTRACT,
    NAMESPACE,
    OUTCOMES,
    RELEASE,
    SOURCE,
    eventually,
    helm,
    in_cluster,
    kubectl,
    run,
    sh,
    token,
)
from support.paths import CHART, REPO, VALUES_DIR

CONFIGMAP = CONTRACT.names["configmap"]
CRONJOB = CONTRACT.names["scheduler"]
POLICY = f"{RELEASE}-{NAMESPACE}-release"
# The worker admission policy (issue 10) is in the release too: a helm deployer applies it as well.
WORKER_POLICY = f"{RELEASE}-worker-switch.{NAMESPACE}"
SHAPE_POLICY = f"{RELEASE}-worker-shape.{NAMESPACE}"
STAMP = f"{RELEASE}-{NAMESPACE}-stamp"
BOT = f"system:serviceaccount:{NAMESPACE}:release-bot"
ALICE = ["--as=alice", "--as-group=oncall", "--as-group=deployers"]
BOB = ["--as=bob", "--as-group=oncall", "--as-group=release-owners"]
BOT_AS = [f"--as={BOT}"]
ADMIN: list[str] = []
RELEASERS = [
    "--set",
    "autonomy.releasers.groups={release-owners}",
    "--set",
    f"autonomy.releasers.serviceAccounts={{{NAMESPACE}/release-bot}}",
]
# (identity, action, outcome) as measured, printed at the end of the module.

# On call may read and update the switch and the CronJob, nothing more; deployers may run helm.
SETUP = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: release-bot, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: e2e-oncall, namespace: {NAMESPACE}}}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    resourceNames: [{CONFIGMAP}]
    verbs: [get, update, patch]
  - apiGroups: [batch]
    resources: [cronjobs]
    resourceNames: [{CRONJOB}]
    verbs: [get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: e2e-oncall, namespace: {NAMESPACE}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-oncall}}
subjects:
  - {{kind: Group, name: oncall, apiGroup: rbac.authorization.k8s.io}}
  - {{kind: ServiceAccount, name: release-bot, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: e2e-deployers, namespace: {NAMESPACE}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}
subjects:
  - {{kind: Group, name: deployers, apiGroup: rbac.authorization.k8s.io}}
  - {{kind: Group, name: release-owners, apiGroup: rbac.authorization.k8s.io}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: e2e-leviathan-policy}}
rules:
  - apiGroups: [admissionregistration.k8s.io]
    resources: [validatingadmissionpolicies, validatingadmissionpolicybindings]
    resourceNames: [{POLICY}, {WORKER_POLICY}, {SHAPE_POLICY}]
    verbs: [get, update, patch]
  - apiGroups: [admissionregistration.k8s.io]
    resources: [mutatingadmissionpolicies, mutatingadmissionpolicybindings]
    resourceNames: [{STAMP}]
    verbs: [get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: e2e-leviathan-policy}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-leviathan-policy}}
subjects:
  - {{kind: Group, name: deployers, apiGroup: rbac.authorization.k8s.io}}
  - {{kind: Group, name: release-owners, apiGroup: rbac.authorization.k8s.io}}
"""


def apply(text: str) -> None:
    path = CHART.parent / ".run" / "release-control-setup.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    kubectl("apply", "-f", str(path))


@pytest.fixture(scope="module")
def restricted(namespace: str):
    """The chart installed with releasers (group release-owners, ServiceAccount release-bot)."""
    helm(
        "upgrade", "--install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES_DIR / "dev.yaml"),
        *RELEASERS, "--wait", "--timeout", "3m",
    )  # fmt: skip
    apply(SETUP)
    yield
    uninstalled = helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
    policies_gone(uninstalled)
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl("delete", kind, "e2e-leviathan-policy", "--ignore-not-found")
    for kind, name in (("rolebinding", "e2e-oncall"), ("rolebinding", "e2e-deployers"), ("role", "e2e-oncall")):
        kubectl("delete", kind, name, "-n", NAMESPACE, "--ignore-not-found")
    kubectl("delete", "serviceaccount", "release-bot", "-n", NAMESPACE, "--ignore-not-found")


def policies_gone(uninstalled: subprocess.CompletedProcess[str]) -> None:
    """After the uninstall, neither this release's policies nor their enforcement may outlast it: the
    next module installs again. In 1 of 5 full runs (2026-12-03) the release policy still refused that install;
    this says which of the two it was, with helm's own words, and removes what helm left."""
    cluster_scoped = "validatingadmissionpolicies,validatingadmissionpolicybindings"
    names = set(kubectl("get", cluster_scoped, "-o", "name").stdout.split())
    left = sorted(name for name in names if name.rsplit("/", 1)[-1] in (POLICY, WORKER_POLICY, SHAPE_POLICY))
    if left:
        print(f"helm uninstall left {left} (exit {uninstalled.returncode}):\n{uninstalled.stdout}{uninstalled.stderr}")
        kubectl("delete", *left, "--ignore-not-found")
    on = {"metadata": {"name": "leviathan-autonomy-config"}, "data": {"dev.yaml": "autonomy_enabled: true\n"}}

    def admitted() -> bool:
        probe = subprocess.run(
            ["kubectl", "create", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
            input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", **on}),
            capture_output=True,
            text=True,
        )
        return probe.returncode == 0 or POLICY not in probe.stderr

    eventually(admitted, timeout=60, what=f"the API server to stop enforcing {POLICY} after the uninstall")


def switch() -> str:
    data = json.loads(kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json").stdout)["data"]
    return next(line for line in data["dev.yaml"].splitlines() if line.startswith(("autonomy_enabled:", "reason:")))


def stamped() -> str | None:
    """Who the API server says last flipped the switch (None where MutatingAdmissionPolicy is not served)."""
    metadata = json.loads(kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json").stdout)["metadata"]
    return (metadata.get("annotations") or {}).get("autonomy.leviathan.io/switched-by")


def stamp_served() -> bool:
    return "mutatingadmissionpolicies" in kubectl("api-resources", "-o", "name").stdout


def config_text() -> str:
    return json.loads(kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json").stdout)["data"]["dev.yaml"]


def suspended() -> bool:
    jsonpath = "jsonpath={.spec.suspend}"
    return kubectl("get", "cronjob", CRONJOB, "-n", NAMESPACE, "-o", jsonpath).stdout == "true"


def edit(who: str, identity: list[str], enabled: bool, reason: str) -> tuple[bool, str]:
    """`kubectl edit` of the switch and reason lines, with sed as the editor."""
    switch_line = f"s/^    autonomy_enabled: .*/    autonomy_enabled: {str(enabled).lower()}/"
    script = f"{switch_line}; s/^    reason: .*/    reason: {reason}/"
    env = {**os.environ, "KUBE_EDITOR": f"sed -i -e '{script}'"}
    result = run("kubectl", "edit", "configmap", CONFIGMAP, "-n", NAMESPACE, *identity, check=False, env=env)
    action = f"kubectl edit: autonomy_enabled {str(enabled).lower()}, reason {reason}"
    return record(who, action, result.returncode == 0, result.stderr)


def replace(who: str, identity: list[str], enabled: bool, reason: str) -> tuple[bool, str]:
    """`kubectl replace` (an update, like edit; edit hides an Invalid answer in its reopened editor)."""
    config = json.loads(kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json").stdout)
    lines = config["data"]["dev.yaml"].splitlines()
    lines = [
        f"autonomy_enabled: {str(enabled).lower()}" if line.startswith("autonomy_enabled:") else line for line in lines
    ]
    lines = [f"reason: {reason}" if line.startswith("reason:") else line for line in lines]
    config["data"]["dev.yaml"] = "\n".join(lines) + "\n"
    path = CHART.parent / ".run" / "release-control-config.json"
    path.write_text(json.dumps(config))
    result = kubectl("replace", "-f", str(path), *identity, check=False)
    action = f"kubectl replace: autonomy_enabled {str(enabled).lower()}, reason {reason}"
    return record(who, action, result.returncode == 0, result.stderr)


def patch_suspend(who: str, identity: list[str], suspend: bool) -> tuple[bool, str]:
    body = json.dumps({"spec": {"suspend": suspend}})
    result = kubectl("patch", "cronjob", CRONJOB, "-n", NAMESPACE, "-p", body, *identity, check=False)
    return record(who, f"kubectl patch cronjob suspend={str(suspend).lower()}", result.returncode == 0, result.stderr)


def helm_switch(who: str, identity: list[str], enabled: bool, reason: str) -> tuple[bool, str]:
    user = [f"--kube-as-user={identity[0].removeprefix('--as=')}"] if identity else []
    groups = [f"--kube-as-group={g.removeprefix('--as-group=')}" for g in identity[1:]]
    flags = ["--set", f"autonomy.enabled={str(enabled).lower()}", "--set-literal", f"autonomy.reason={reason}"]
    if enabled:
        version = kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "jsonpath={.metadata.resourceVersion}")
        flags += ["--set", f"autonomy.confirmEnable={version.stdout}"]
    # The kubectl edits above own the config text: Helm 4's server-side apply needs --force-conflicts
    # (safe: the render carries the live switch; helm-facts).
    result = helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reset-then-reuse-values", "--force-conflicts",
        *flags, *user, *groups, check=False,
    )  # fmt: skip
    action = f"helm upgrade autonomy.enabled={str(enabled).lower()}"
    return record(who, action, result.returncode == 0, result.stderr + result.stdout)


def record(who: str, action: str, allowed: bool, output: str) -> tuple[bool, str]:
    outcome = (
        "allowed"
        if allowed
        else "DENIED: "
        + next(
            (line.strip() for line in output.splitlines() if "denied" in line or "may not" in line or "needs" in line),
            output.strip()[:200],
        )
    )
    OUTCOMES.append((who, action, outcome))
    return allowed, output


def test_policy_is_in_force(restricted):
    policy = json.loads(kubectl("get", "validatingadmissionpolicy", POLICY, "-o", "json").stdout)
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy.get("status", {}).get("typeChecking", {}).get("expressionWarnings") in (None, [])
    kubectl("get", "validatingadmissionpolicybinding", POLICY)


def test_on_call_pulls_the_brake_and_cannot_release_it(restricted):
    allowed, _ = edit("alice", ALICE, enabled=False, reason='"INC-7: bad deploys"')
    assert allowed and switch() == "autonomy_enabled: false"
    assert stamped() == ("alice" if stamp_served() else None)

    allowed, error = edit("alice", ALICE, enabled=True, reason='"INC-7 fixed"')
    assert not allowed
    assert "alice may not turn autonomy on in ConfigMap leviathan-autonomy-config" in error
    assert "groups release-owners; ServiceAccounts leviathan/release-bot" in error
    assert switch() == "autonomy_enabled: false"

    allowed, _ = patch_suspend("alice", ALICE, suspend=True)
    assert allowed and suspended()
    allowed, error = patch_suspend("alice", ALICE, suspend=False)
    assert not allowed and "alice may not unsuspend the scheduler CronJob leviathan-dev-scheduler" in error
    assert suspended()

    allowed, error = edit("admin", ADMIN, enabled=True, reason='"admin says so"')
    assert not allowed and "may not turn autonomy on" in error, "system:masters is no releaser unless listed"


def test_a_releaser_releases_with_a_reason_only(restricted):
    assert switch() == "autonomy_enabled: false" and suspended()
    allowed, error = replace("bob", BOB, enabled=True, reason='""')
    assert not allowed and "turning autonomy on needs a reason" in error
    allowed, error = replace("bob", BOB, enabled=True, reason='"   "')
    assert not allowed and "needs a reason" in error
    assert switch() == "autonomy_enabled: false"

    allowed, _ = edit("bob", BOB, enabled=True, reason='"INC-7 fixed, bob"')
    assert allowed and switch() == "autonomy_enabled: true"
    assert stamped() == ("bob" if stamp_served() else None)
    assert 'reason: "INC-7 fixed, bob"' in config_text()
    allowed, _ = patch_suspend("bob", BOB, suspend=False)
    assert allowed and not suspended()

    # The ServiceAccount releaser, the same way round.
    assert edit("release-bot", BOT_AS, enabled=False, reason='"bot drill"')[0]
    assert edit("release-bot", BOT_AS, enabled=True, reason='"bot drill over"')[0]
    assert patch_suspend("release-bot", BOT_AS, suspend=True)[0]
    assert patch_suspend("release-bot", BOT_AS, suspend=False)[0]
    assert switch() == "autonomy_enabled: true" and not suspended()
    assert stamped() == (BOT if stamp_served() else None)


def test_the_stamp_cannot_be_typed_by_hand(restricted):
    if not stamp_served():
        pytest.skip("this API server does not serve MutatingAdmissionPolicy: no stamp (docs/RUNBOOK.md)")
    before = stamped()
    kubectl("annotate", "configmap", CONFIGMAP, "-n", NAMESPACE, "autonomy.leviathan.io/switched-by=mallory",
            "--overwrite", *ALICE)  # fmt: skip
    assert stamped() == before
    OUTCOMES.append(("alice", "kubectl annotate switched-by=mallory", f"admitted, stamp kept as {before}"))


def test_helm_upgrades_meet_the_same_policy(restricted):
    allowed, _ = helm_switch("alice", ALICE, enabled=False, reason="INC-8: helm disable")
    assert allowed and switch() == "autonomy_enabled: false"
    assert stamped() == ("alice" if stamp_served() else None)

    allowed, error = helm_switch("alice", ALICE, enabled=True, reason="INC-8 over")
    assert not allowed and "alice may not turn autonomy on" in error
    assert switch() == "autonomy_enabled: false"

    allowed, error = helm_switch("bob", BOB, enabled=True, reason="INC-8 over, bob")
    assert allowed, error
    assert switch() == "autonomy_enabled: true"
    assert 'reason: "INC-8 over, bob"' in config_text()
    assert stamped() == ("bob" if stamp_served() else None)

    # A routine upgrade by anyone keeps the state (and the stamp) and is not held up.
    assert helm_switch("alice", ALICE, enabled=True, reason="INC-8 over, bob")[0]
    assert stamped() == ("bob" if stamp_served() else None)


def control_plane(path: str) -> str:
    service = f"http://{CONTRACT.names['control_plane']}:{CONTRACT.names['service_port']}"
    return in_cluster(f'curl -fsS -H "Authorization: Bearer $CONTROL_PLANE_TOKEN" {service}{path}',
                      env={"CONTROL_PLANE_TOKEN": token()}).stdout  # fmt: skip


def metric(name: str) -> float | None:
    for line in control_plane("/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_a_past_review_by_raises_the_metric_and_never_re_enables(restricted):
    """Issue 14, item 3: on call disables with a review time that is already past."""
    helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reset-then-reuse-values", "--force-conflicts",
        "--set", "autonomy.enabled=false", "--set-literal", "autonomy.reason=INC-10: until reviewed",
        "--set", "autonomy.reviewBy=2020-01-01T00:00:00Z", "--kube-as-user=alice", "--kube-as-group=oncall",
        "--kube-as-group=deployers",
    )  # fmt: skip
    assert 'review_by: "2020-01-01T00:00:00Z"' in config_text()

    def overdue() -> dict | None:
        detail = json.loads(control_plane("/v1/autonomy"))
        return detail if detail["review_overdue"] else None

    detail = eventually(overdue, timeout=60, what="GET /v1/autonomy to say review_overdue")
    assert detail["autonomy_enabled"] is False and detail["review_by"] == "2020-01-01T00:00:00Z"
    assert detail["reason"] == "INC-10: until reviewed" and detail["disabled_since"]
    assert metric("leviathan_autonomy_review_overdue") == 1
    assert switch() == "autonomy_enabled: false"
    OUTCOMES.append(("alice", "helm disable with review_by in the past", "allowed; review_overdue 1, switch off"))

    # Overdue or not, re-enabling still needs a releaser.
    allowed, error = edit("alice", ALICE, enabled=True, reason='"review done"')
    assert not allowed and "alice may not turn autonomy on" in error
    assert switch() == "autonomy_enabled: false" and metric("leviathan_autonomy_review_overdue") == 1


def test_make_status_shows_state_reason_who_and_since_when(restricted):
    """Issue 14, item 2: after the steps above, alice's helm disable is the last flip."""
    # A port of our own: other engineers' clusters may forward 18000 on this machine.
    lines = run("make", "-s", "-C", str(REPO), "status", "LOCAL_PORT=18462").stdout.strip().splitlines()
    switched_by, detail, status = lines[-3:]
    assert switched_by == ("switched by: alice" if stamp_served() else "switched by: ")
    answer = json.loads(detail)
    assert answer["autonomy_enabled"] is False and answer["reason"] == "INC-10: until reviewed"
    assert answer["state_changed_at"].endswith("Z") and answer["disabled_since"] == answer["state_changed_at"]
    assert json.loads(status) == {"autonomy_enabled": False, "source": SOURCE}


def test_the_control_plane_says_who_and_records_the_flip_as_an_event(restricted):
    """Issue 14, item 2: GET /v1/autonomy reads the stamp through the API; `kubectl get events` is the history."""
    expected = "alice" if stamp_served() else None

    def read() -> dict | None:
        detail = json.loads(control_plane("/v1/autonomy"))
        return detail if detail["kubernetes_api_read_at"] and detail["switched_by"] == expected else None

    detail = eventually(read, timeout=60, what=f"GET /v1/autonomy to say switched_by {expected}")
    assert detail["kubernetes_api_problem"] is None
    if expected is None:
        assert "MutatingAdmissionPolicy" in detail["switched_by_problem"]

    # Two flips of its own, by kubectl edit: a helm upgrade earlier in the module may have
    # rolled the control plane just as the switch moved, and a pod that starts on a
    # changed file saw no change (the first read at start-up is not one).
    def flip(reason: str, text: str) -> list[dict]:
        events = json.loads(
            kubectl(
                "get", "events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={CONFIGMAP}", "-o", "json"
            ).stdout
        )["items"]
        return [e for e in events if e["reason"] == reason and e["message"].endswith(f"reason: {text}{by(reason)}")]

    def by(reason: str) -> str:
        if not expected:
            return ""
        return "; switched by bob" if reason == "AutonomyEnabled" else "; switched by alice"

    # One at a time: kubelet delivers only the latest content, so two quick edits could look like none.
    assert edit("bob", BOB, enabled=True, reason='"INC-11: event check"')[0]
    [on] = eventually(lambda: flip("AutonomyEnabled", "INC-11: event check"), 60, "bob's AutonomyEnabled Event")
    assert edit("alice", ALICE, enabled=False, reason='"INC-11: event check over"')[0]
    [off] = eventually(lambda: flip("AutonomyDisabled", "INC-11: event check over"), 60, "alice's Disabled Event")
    assert on["type"] == "Normal" and off["type"] == "Warning"
    for event in (on, off):
        assert event["involvedObject"]["kind"] == "ConfigMap"
        assert event["reportingComponent"] == "leviathan-control-plane"
    assert off["message"].startswith(f"autonomy_enabled true -> false (source: {SOURCE})")
    history = sh(f"kubectl get events -n {NAMESPACE} --field-selector involvedObject.name={CONFIGMAP}").stdout
    assert "AutonomyEnabled" in history and "AutonomyDisabled" in history
    OUTCOMES.append(
        (
            "control plane",
            "GET /v1/autonomy after alice's helm disable; then bob's and alice's kubectl edits",
            f"switched_by {expected}; Events {on['reason']} (bob), {off['reason']} (alice)",
        )
    )


def test_helm_test_says_when_the_release_restriction_is_not_in_force(restricted):
    """Issue 14, bad input: with the policy objects gone everything works as before, and `helm test` says so."""
    test_rbac = f"{POLICY}-test"
    helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m")
    OUTCOMES.append(("admin", "helm test, release policy present", "passes"))
    assert kubectl("get", "clusterrole", test_rbac, check=False).returncode != 0, "a passing test removes its RBAC"

    kubectl("delete", "validatingadmissionpolicy", POLICY)
    failed = helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m", check=False)
    assert failed.returncode != 0
    log = kubectl("logs", "-n", NAMESPACE, f"{RELEASE}-test-release-policy").stdout
    assert log.strip() == (
        f"✗ The release restriction is NOT in force: ValidatingAdmissionPolicy {POLICY} not found. The switch "
        "itself still works (turning autonomy off and suspending are unaffected), but anyone with update rights "
        f'can turn it back on. Restore it with: helm upgrade {RELEASE} "$LEVIATHAN_CHART" -n {NAMESPACE} '
        "--reset-then-reuse-values"
    )
    OUTCOMES.append(("admin", "helm test after kubectl delete validatingadmissionpolicy", "fails: NOT in force"))
    # The brake still works without it.
    allowed, _ = patch_suspend("alice", ALICE, suspend=True)
    assert allowed and suspended()

    # The upgrade the message names (as the admin: a routine upgrade keeps the state) brings it back.
    helm("upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reset-then-reuse-values", "--force-conflicts")
    kubectl("get", "validatingadmissionpolicy", POLICY)
    assert suspended(), "the upgrade kept the live stop"
    helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m")
    OUTCOMES.append(("admin", "helm test after helm upgrade restored the policy", "passes"))
    assert kubectl("get", "clusterrole", test_rbac, check=False).returncode != 0
    allowed, error = patch_suspend("alice", ALICE, suspend=False)
    assert not allowed and "alice may not unsuspend" in error, "the restriction is back in force"


# ---- Issue 19: every write path, as a namespace admin who is not a releaser (alice), and bob -------------

SETTINGS = "leviathan-scheduler-config"
OFF = 'autonomy_enabled: false\nreason: "INC-19: drill"\n'
ON = 'autonomy_enabled: true\nreason: "INC-19: drill over"\n'


def attempt(who: str, identity: list[str], action: str, *args: str, stdin: str | None = None) -> tuple[bool, str]:
    """`kubectl ARGS` as `identity`; recorded in the identity x path matrix."""
    command = ["kubectl", *args, *identity]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    return record(who, action, result.returncode == 0, result.stderr + result.stdout)


def configmap_manifest(name: str, data: dict, binary: dict | None = None) -> str:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NAMESPACE}}
    manifest["data"] = data
    if binary:
        manifest["binaryData"] = binary
    return json.dumps(manifest)


def worker_dry_run_refused() -> bool:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "probe", "namespace": NAMESPACE, "labels": {"app": "leviathan-worker"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "busybox"}]}}},
    }
    result = subprocess.run(
        ["kubectl", "create", "--dry-run=server", "-f", "-"], input=json.dumps(job), capture_output=True, text=True
    )
    # "are refused": the switch says off; "no params found": the ConfigMap is gone (the binding denies).
    return result.returncode != 0 and ("are refused" in result.stderr or "no params found" in result.stderr)


def set_text(text: str) -> None:
    """As bob (a releaser): the switch file set to `text`."""
    body = json.dumps({"data": {"dev.yaml": text}})
    assert attempt("bob", BOB, "patch switch", "patch", "configmap", CONFIGMAP, "-n", NAMESPACE, "-p", body)[0]


def test_write_paths_off_to_on_need_a_releaser(restricted):
    set_text(OFF)
    patch = ["patch", "configmap", CONFIGMAP, "-n", NAMESPACE]
    # The worst path of the issue: a quoted key (plus a moved worker selector, now in another ConfigMap).
    allowed, _ = attempt("alice", ALICE, "patch quoted key on", *patch, "-p", json.dumps(
        {"data": {"dev.yaml": '"autonomy_enabled": true\n'}}))  # fmt: skip
    assert allowed, "an unusable text is no release: it reads as off everywhere"
    assert worker_dry_run_refused()
    allowed, error = attempt("alice", ALICE, "patch on (after an unusable text)", *patch, "-p", json.dumps(
        {"data": {"dev.yaml": ON}}))  # fmt: skip
    assert not allowed and "alice may not turn autonomy on" in error, "no in-between text makes on free"
    for action, args in (
        (
            "json patch on",
            ["--type", "json", "-p", json.dumps([{"op": "replace", "path": "/data/dev.yaml", "value": ON}])],
        ),
        ("server-side apply on", []),
    ):
        if args:
            allowed, error = attempt("alice", ALICE, action, *patch, *args)
        else:
            allowed, error = attempt("alice", ALICE, action, "apply", "--server-side", "--force-conflicts",
                                     "--field-manager=anything", "-f", "-",
                                     stdin=configmap_manifest(CONFIGMAP, {"dev.yaml": ON}))  # fmt: skip
        assert not allowed and "may not turn autonomy on" in error, action
    set_text(OFF)
    allowed, error = attempt("alice", ALICE, "replace on", "replace", "-f", "-",
                             stdin=configmap_manifest(CONFIGMAP, {"dev.yaml": ON}))  # fmt: skip
    assert not allowed and "may not turn autonomy on" in error
    # binaryData, for anyone: the file kubelet would mount is not the text the policies read.
    moved = configmap_manifest(CONFIGMAP, {}, {"dev.yaml": base64.b64encode(ON.encode()).decode()})
    for who, identity in (("alice", ALICE), ("bob", BOB)):
        allowed, error = attempt(who, identity, "replace with binaryData", "replace", "-f", "-", stdin=moved)
        assert not allowed and "never in binaryData" in error
    # Deleting is a brake; creating it again on is a release.
    assert attempt("alice", ALICE, "delete switch ConfigMap", "delete", "configmap", CONFIGMAP, "-n", NAMESPACE)[0]
    assert worker_dry_run_refused()
    allowed, error = attempt("alice", ALICE, "create switch ConfigMap on", "create", "-f", "-",
                             stdin=configmap_manifest(CONFIGMAP, {"dev.yaml": ON}))  # fmt: skip
    assert not allowed and "may not turn autonomy on" in error
    assert attempt("alice", ALICE, "create switch ConfigMap off", "create", "-f", "-",
                   stdin=configmap_manifest(CONFIGMAP, {"dev.yaml": OFF}))[0]  # fmt: skip
    assert config_text() == OFF


def test_what_runs_and_the_cronjob_need_a_releaser(restricted):
    settings = json.loads(kubectl("get", "configmap", SETTINGS, "-n", NAMESPACE, "-o", "json").stdout)["data"]
    moved = settings["scheduler.yaml"].replace("app: leviathan-worker\n", "app: leviathan-worker-x\n")
    assert moved != settings["scheduler.yaml"]
    body = json.dumps({"data": {"scheduler.yaml": moved}})
    allowed, error = attempt("alice", ALICE, "patch settings (worker selector)", "patch", "configmap", SETTINGS,
                             "-n", NAMESPACE, "-p", body)  # fmt: skip
    assert not allowed and "may not change the scheduler's settings" in error
    kubectl("patch", "cronjob", CRONJOB, "-n", NAMESPACE, "-p", '{"spec":{"suspend":true}}')
    template = json.dumps({"spec": {"jobTemplate": {"spec": {"activeDeadlineSeconds": 5}}}})
    allowed, error = attempt("alice", ALICE, "patch CronJob jobTemplate", "patch", "cronjob", CRONJOB, "-n",
                             NAMESPACE, "-p", template)  # fmt: skip
    assert not allowed and "may not change what the scheduler CronJob" in error
    cronjob = json.loads(kubectl("get", "cronjob", CRONJOB, "-n", NAMESPACE, "-o", "json").stdout)
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        cronjob["metadata"].pop(key, None)
    cronjob.pop("status", None)
    assert attempt("alice", ALICE, "delete CronJob", "delete", "cronjob", CRONJOB, "-n", NAMESPACE)[0]
    cronjob["spec"]["suspend"] = False
    allowed, error = attempt("alice", ALICE, "create CronJob unsuspended", "create", "-f", "-",
                             stdin=json.dumps(cronjob))  # fmt: skip
    assert not allowed and "may not unsuspend" in error
    cronjob["spec"]["suspend"] = True
    assert attempt("alice", ALICE, "create CronJob suspended", "create", "-f", "-", stdin=json.dumps(cronjob))[0]


def test_a_halted_worker_stays_halted_and_a_worker(restricted):
    set_text(ON)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "halted-worker", "namespace": NAMESPACE, "labels": {"app": "leviathan-worker"}},
        "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "w", "image": "busybox"}]}}},
    }  # fmt: skip
    kubectl("delete", "job", "halted-worker", "-n", NAMESPACE, "--ignore-not-found")
    assert attempt("bob", BOB, "create suspended worker", "create", "-f", "-", stdin=json.dumps(job))[0]
    try:
        allowed, error = attempt("alice", ALICE, "drop a worker's app label", "label", "job", "halted-worker",
                                 "-n", NAMESPACE, "app-")  # fmt: skip
        assert not allowed and "keeps its label app=leviathan-worker" in error
        allowed, error = attempt("alice", ALICE, "resume a halted worker", "patch", "job", "halted-worker", "-n",
                                 NAMESPACE, "-p", '{"spec":{"suspend":false}}')  # fmt: skip
        assert not allowed and "may not resume a suspended worker Job" in error
    finally:
        kubectl("delete", "job", "halted-worker", "-n", NAMESPACE, "--ignore-not-found")
        set_text(OFF)


def test_the_scheduler_account_creates_worker_shaped_jobs_only(restricted):
    set_text(ON)
    account = ["--as=system:serviceaccount:leviathan:leviathan-scheduler"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "not-a-worker", "namespace": NAMESPACE, "labels": {"app": "something-else"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "busybox"}]}}},
    }
    try:
        allowed, error = attempt("scheduler SA", account, "create a Job without the worker label", "create",
                                 "--dry-run=server", "-f", "-", stdin=json.dumps(job))  # fmt: skip
        assert not allowed and "may create worker Jobs only" in error
        job["metadata"]["labels"] = {"app": "leviathan-worker"}
        job["spec"]["template"]["metadata"] = {"labels": {"app": "leviathan-worker"}}
        job["spec"]["template"]["spec"]["serviceAccountName"] = "leviathan-control-plane"
        allowed, error = attempt("scheduler SA", account, "create a worker with another ServiceAccount", "create",
                                 "--dry-run=server", "-f", "-", stdin=json.dumps(job))  # fmt: skip
        assert not allowed and "without a ServiceAccount token" in error
    finally:
        set_text(OFF)
