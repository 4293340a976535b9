"""ServiceAccounts, the scheduler's Role and its binding. The Role is also checked
against a recorded scheduler run in tests/scheduler/test_rbac_matches_scheduler.py."""

from __future__ import annotations

from typing import ClassVar

import pytest

from support.helm import HelmError, find, pod_spec, render_chart
from support.paths import values_files


class TestSchedulerRole:
    def test_only_list_and_create_jobs_get_the_configmap_and_create_events(self):
        docs = render_chart()
        role = find(docs, "Role", "leviathan-scheduler")
        assert role["metadata"]["name"] == "leviathan-scheduler"
        assert role["rules"] == [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "create"]},
            # Its own CronJob, read before the list and every create: suspended, nothing is submitted.
            {
                "apiGroups": ["batch"],
                "resources": ["cronjobs"],
                "resourceNames": ["leviathan-dev-scheduler"],
                "verbs": ["get"],
            },
            # The live switch, re-read before every create: that one ConfigMap, nothing else.
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["leviathan-autonomy-config"],
                "verbs": ["get"],
            },
            # A task paused after failures is recorded as an Event, in this namespace only (a Role).
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ]
        assert [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")] == []

    @pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
    def test_no_wildcards_and_no_secrets(self, values_file):
        roles = [d for d in render_chart(values_files=[values_file]) if d["kind"] == "Role"]
        assert {role["metadata"]["name"] for role in roles} == {"leviathan-scheduler", "leviathan-control-plane"}
        for rule in [rule for role in roles for rule in role["rules"]]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field]
            assert "secrets" not in rule["resources"]

    def test_binding_ties_the_role_to_the_scheduler_account(self):
        docs = render_chart()
        binding = find(docs, "RoleBinding", "leviathan-scheduler")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "leviathan-scheduler",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "leviathan-scheduler", "namespace": "leviathan"}
        ]
        assert pod_spec(find(docs, "CronJob"))["serviceAccountName"] == "leviathan-scheduler"

    def test_a_brought_account_still_gets_the_role(self):
        """serviceAccount.create=false must not drop the Role: the scheduler would run into 403s."""
        docs = render_chart({"scheduler": {"serviceAccount": {"create": False, "name": "ops-scheduler"}}})
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert ("ServiceAccount", "leviathan-scheduler") not in kinds
        assert ("Role", "leviathan-scheduler") in kinds
        assert find(docs, "RoleBinding", "leviathan-scheduler")["subjects"] == [
            {"kind": "ServiceAccount", "name": "ops-scheduler", "namespace": "leviathan"}
        ]
        assert pod_spec(find(docs, "CronJob"))["serviceAccountName"] == "ops-scheduler"

    def test_rbac_create_false_renders_no_role_but_keeps_the_account(self):
        docs = render_chart({"rbac": {"create": False}})
        assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
        assert find(docs, "ServiceAccount", "leviathan-scheduler")

    @pytest.mark.parametrize("component", ["scheduler", "controlPlane"])
    def test_creating_no_account_and_naming_none_is_refused(self, component):
        needs = f"{component}.serviceAccount.create=false needs {component}.serviceAccount.name"
        with pytest.raises(HelmError, match=needs):
            render_chart({component: {"serviceAccount": {"create": False}}})


class TestControlPlaneRole:
    """Exactly the control plane's API calls (leviathan_control_plane/cluster.py), with kubernetesApi.enabled."""

    def test_get_its_configmap_list_jobs_create_events_nothing_else(self):
        docs = render_chart()
        assert find(docs, "Role", "leviathan-control-plane")["rules"] == [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["leviathan-autonomy-config"],
                "verbs": ["get"],
            },
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ]
        binding = find(docs, "RoleBinding", "leviathan-control-plane")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "leviathan-control-plane",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "leviathan-control-plane", "namespace": "leviathan"}
        ]

    @pytest.mark.parametrize(
        "values", [{"controlPlane": {"kubernetesApi": {"enabled": False}}}, {"rbac": {"create": False}}]
    )
    def test_no_role_without_api_access_or_rbac_create(self, values):
        names = {(d["kind"], d["metadata"]["name"]) for d in render_chart(values)}
        assert ("Role", "leviathan-control-plane") not in names
        assert ("RoleBinding", "leviathan-control-plane") not in names

    def test_a_brought_account_gets_the_role(self):
        docs = render_chart({"controlPlane": {"serviceAccount": {"create": False, "name": "ops-status"}}})
        assert find(docs, "RoleBinding", "leviathan-control-plane")["subjects"] == [
            {"kind": "ServiceAccount", "name": "ops-status", "namespace": "leviathan"}
        ]


class TestTokens:
    @pytest.mark.parametrize(
        ("kind", "name", "automount"),
        [
            ("Deployment", "leviathan-control-plane", False),
            ("Pod", "leviathan-test-status", False),
            ("CronJob", "leviathan-dev-scheduler", True),
            ("Pod", "leviathan-test-scheduler", True),
        ],
    )
    def test_only_the_scheduler_and_its_test_pod_mount_an_api_token(self, kind, name, automount):
        spec = pod_spec(find(render_chart(), kind, name))
        assert spec["automountServiceAccountToken"] is automount
        if automount:
            assert spec["serviceAccountName"] == "leviathan-scheduler"

    def test_the_control_plane_container_alone_gets_a_projected_api_token(self):
        spec = pod_spec(find(render_chart(), "Deployment", "leviathan-control-plane"))
        [volume] = [v for v in spec["volumes"] if v["name"] == "kube-api-access"]
        sources = volume["projected"]["sources"]
        assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}
        assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
        assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
        mounted = {
            container["name"]
            for container in spec["containers"] + spec.get("initContainers", [])
            for mount in container.get("volumeMounts", [])
            if mount["name"] == "kube-api-access"
        }
        assert mounted == {"control-plane"}
        [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "kube-api-access"]
        assert mount == {
            "name": "kube-api-access",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["LEVIATHAN_CONFIGMAP"] == "leviathan-autonomy-config"

    def test_without_api_access_no_token_and_no_configmap_name(self):
        spec = pod_spec(find(render_chart({"controlPlane": {"kubernetesApi": {"enabled": False}}}), "Deployment"))
        assert "kube-api-access" not in [v["name"] for v in spec["volumes"]]
        names = [e["name"] for e in spec["containers"][0]["env"]]
        assert "LEVIATHAN_CONFIGMAP" not in names
        assert spec["automountServiceAccountToken"] is False

    @pytest.mark.parametrize("name", ["leviathan-control-plane", "leviathan-scheduler"])
    def test_accounts_do_not_automount(self, name):
        account = find(render_chart(), "ServiceAccount", name)
        assert account["automountServiceAccountToken"] is False


class TestPeopleRoles:
    """Opt-in Roles for people: on-call may brake and look, the releaser also what a release changes."""

    BRAKE: ClassVar[list[dict]] = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["leviathan-autonomy-config"],
            "verbs": ["get", "patch", "update"],
        },
        {
            "apiGroups": ["batch"],
            "resources": ["cronjobs"],
            "resourceNames": ["leviathan-dev-scheduler"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]

    def test_off_by_default(self):
        names = {d["metadata"]["name"] for d in render_chart() if d["kind"] in ("Role", "RoleBinding")}
        assert names == {"leviathan-scheduler", "leviathan-control-plane"}

    def test_the_on_call_role_may_brake_and_look_and_nothing_more(self):
        docs = render_chart({"rbac": {"onCall": {"create": True}}})
        assert find(docs, "Role", "leviathan-on-call")["rules"] == self.BRAKE
        # No subjects: no binding (bind it yourself, or list subjects).
        assert [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "leviathan-on-call"] == []

    def test_the_releaser_role_adds_the_scheduler_settings_and_cronjob_update(self):
        rules = find(render_chart({"rbac": {"releaser": {"create": True}}}), "Role", "leviathan-releaser")["rules"]
        settings = {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["leviathan-scheduler-config"],
            "verbs": ["get", "patch", "update"],
        }
        cronjob = {**self.BRAKE[1], "verbs": ["get", "patch", "update"]}
        assert rules == [self.BRAKE[0], settings, cronjob, *self.BRAKE[2:]]

    @pytest.mark.parametrize("role", ["onCall", "releaser"])
    def test_neither_role_reaches_secrets_policies_roles_or_creates_anything(self, role):
        name = {"onCall": "leviathan-on-call", "releaser": "leviathan-releaser"}[role]
        rules = find(render_chart({"rbac": {role: {"create": True}}}), "Role", name)["rules"]
        resources = {r for rule in rules for r in rule["resources"]}
        verbs = {v for rule in rules for v in rule["verbs"]}
        assert resources.isdisjoint({"secrets", "roles", "rolebindings", "validatingadmissionpolicies"})
        assert verbs.isdisjoint({"create", "delete", "deletecollection", "*", "escalate", "bind", "impersonate"})
        for rule in rules:
            assert "*" not in rule["apiGroups"] + rule["resources"]

    def test_subjects_are_bound(self):
        subjects = {"users": ["alice@example.com"], "groups": ["sre"], "serviceAccounts": ["ops/pager"]}
        docs = render_chart({"rbac": {"onCall": {"create": True, "subjects": subjects}}})
        binding = find(docs, "RoleBinding", "leviathan-on-call")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "leviathan-on-call",
        }
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre"},
            {"kind": "ServiceAccount", "namespace": "ops", "name": "pager"},
        ]

    def test_subjects_without_the_role_bind_nothing(self):
        docs = render_chart({"rbac": {"releaser": {"create": False, "subjects": {"users": ["bob"]}}}})
        assert [d for d in docs if d["metadata"]["name"] == "leviathan-releaser"] == []

    @pytest.mark.parametrize(
        "subjects",
        [{"users": ["alice bob"]}, {"serviceAccounts": ["pager"]}, {"user": ["alice"]}, {"groups": "sre"}],
        ids=["space", "sa-without-namespace", "key-typo", "not-a-list"],
    )
    def test_schema_refuses_a_malformed_subject(self, subjects):
        with pytest.raises(HelmError, match="subjects"):
            render_chart({"rbac": {"onCall": {"create": True, "subjects": subjects}}})
