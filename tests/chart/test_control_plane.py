"""Control-plane Deployment, Service, PodDisruptionBudget and NetworkPolicy."""

from __future__ import annotations

import jmespath
import pytest

from support.helm import HelmError, find, render_chart

DEPLOYMENT = "templates/control-plane-deployment.yaml"
SERVICE = "templates/control-plane-service.yaml"
PDB = "templates/control-plane-pdb.yaml"
NETWORK_POLICY = "templates/control-plane-networkpolicy.yaml"


class TestDeployment:
    def test_runbook_names_labels_and_port(self):
        docs = render_chart(show_only=[DEPLOYMENT, SERVICE])
        deployment, service = find(docs, "Deployment"), find(docs, "Service")
        assert deployment["metadata"]["name"] == service["metadata"]["name"] == "leviathan-control-plane"
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["app"] == "leviathan-control-plane"
        assert jmespath.search("spec.ports[0].port", service) == 8000
        assert jmespath.search("spec.template.spec.containers[0].ports[0]", deployment) == {
            "name": "http",
            "containerPort": 8000,
            "protocol": "TCP",
        }
        # The Service reaches exactly these pods.
        assert service["spec"]["selector"].items() <= pod_labels.items()

    def test_selector_uses_only_stable_labels(self):
        """An immutable selector must not change when the chart version, app version or names change."""
        (deployment,) = render_chart({"fullnameOverride": "other"}, show_only=[DEPLOYMENT])
        assert deployment["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": "leviathan",
            "app.kubernetes.io/instance": "leviathan",
            "app.kubernetes.io/component": "control-plane",
        }

    def test_token_comes_from_a_mounted_secret_file_not_an_env_var(self):
        (deployment,) = render_chart(show_only=[DEPLOYMENT])
        spec = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["LEVIATHAN_CONTROL_PLANE_TOKEN_FILE"]["value"] == "/etc/leviathan/token/control-plane-token"
        assert "LEVIATHAN_CONTROL_PLANE_TOKEN" not in env
        assert jmespath.search("containers[0].env[].valueFrom.secretKeyRef", spec) == []
        mount = jmespath.search("containers[0].volumeMounts[?name=='control-plane-token'] | [0]", spec)
        assert mount == {"name": "control-plane-token", "mountPath": "/etc/leviathan/token", "readOnly": True}
        volume = jmespath.search("volumes[?name=='control-plane-token'] | [0].secret", spec)
        assert volume["secretName"] == "leviathan-secrets"
        assert volume["items"] == [{"key": "LEVIATHAN_CONTROL_PLANE_TOKEN", "path": "control-plane-token"}]
        assert volume["defaultMode"] == 0o440

    @pytest.mark.parametrize(("default", "expected"), [(True, "true"), (False, "false")])
    def test_fail_safe_default_is_passed(self, default, expected):
        (deployment,) = render_chart({"autonomy": {"defaultWhenUnavailable": default}}, show_only=[DEPLOYMENT])
        env = jmespath.search(
            "spec.template.spec.containers[0].env[?name=='LEVIATHAN_AUTONOMY_DEFAULT'].value", deployment
        )
        assert env == [expected]

    def test_probes(self):
        (deployment,) = render_chart(show_only=[DEPLOYMENT])
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    @pytest.mark.parametrize(
        ("image", "expected"),
        [
            ({}, "ghcr.io/leviathan/control-plane:0.1.0"),
            ({"tag": "1.2.3"}, "ghcr.io/leviathan/control-plane:1.2.3"),
            ({"repository": "registry.local/cp"}, "registry.local/cp:0.1.0"),
            ({"digest": "sha256:" + "a" * 64}, "ghcr.io/leviathan/control-plane@sha256:" + "a" * 64),
        ],
    )
    def test_image_reference(self, image, expected):
        (deployment,) = render_chart({"controlPlane": {"image": image}}, show_only=[DEPLOYMENT])
        assert jmespath.search("spec.template.spec.containers[0].image", deployment) == expected

    def test_no_checksum_annotation_forces_restarts(self):
        """The control plane follows config and token live; a rollout on every change would be noise."""
        (deployment,) = render_chart({"controlPlane": {"podAnnotations": {}}}, show_only=[DEPLOYMENT])
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert not [key for key in annotations if "checksum" in key]

    def test_pod_extras_are_passed_through(self):
        values = {
            "controlPlane": {
                "podAnnotations": {"a": "b"},
                "podLabels": {"team": "sre"},
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "priorityClassName": "high",
            },
            "imagePullSecrets": ["regcred"],
        }
        (deployment,) = render_chart(values, show_only=[DEPLOYMENT])
        template = deployment["spec"]["template"]
        assert template["metadata"]["annotations"] == {"a": "b"}
        assert template["metadata"]["labels"]["team"] == "sre"
        assert template["spec"]["nodeSelector"] == {"disk": "ssd"}
        assert template["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
        assert template["spec"]["priorityClassName"] == "high"
        assert template["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


class TestDisruptionBudget:
    @pytest.mark.parametrize(("replicas", "rendered"), [(1, False), (2, True), (3, True)])
    def test_only_with_more_than_one_replica(self, replicas, rendered):
        docs = render_chart({"controlPlane": {"replicaCount": replicas}})
        pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
        assert len(pdbs) == (1 if rendered else 0)
        if rendered:
            assert pdbs[0]["spec"]["minAvailable"] == 1
            assert pdbs[0]["spec"]["selector"] == find(docs, "Deployment")["spec"]["selector"]


class TestNetworkPolicy:
    TEST_POD = "templates/tests/test-status.yaml"
    CRONJOB = "templates/scheduler-cronjob.yaml"

    @staticmethod
    def admitted(policy: dict, labels: dict, namespace_labels: dict | None = None) -> bool:
        """Whether a pod with these labels may reach port 8000 (podSelector peers match this namespace only)."""
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    continue
                wanted = peer["podSelector"].get("matchLabels", {})
                if wanted.items() <= labels.items():
                    return True
        return False

    def test_admits_port_8000_from_the_release_test_pod_only(self):
        docs = render_chart(show_only=[NETWORK_POLICY, DEPLOYMENT])
        policy = find(docs, "NetworkPolicy")
        assert policy["spec"]["podSelector"] == find(docs, "Deployment")["spec"]["selector"]
        [rule] = policy["spec"]["ingress"]
        assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
        assert rule["from"] == [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "leviathan",
                        "app.kubernetes.io/instance": "leviathan",
                        "app.kubernetes.io/component": "test",
                    }
                }
            }
        ]
        # Egress to the Kubernetes API's ports only (no address known under helm template).
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["egress"] == [
            {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}
        ]

    def test_without_api_access_all_egress_is_denied(self):
        values = {"controlPlane": {"kubernetesApi": {"enabled": False}}}
        policy = find(render_chart(values, show_only=[NETWORK_POLICY]), "NetworkPolicy")
        # Deny all egress: the control plane only reads mounted files.
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["egress"] == []

    def test_the_api_servers_addresses_narrow_the_egress_rule(self):
        values = {"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1/32", "fd00::1/128"], "ports": [6443]}}}
        policy = find(render_chart(values, show_only=[NETWORK_POLICY]), "NetworkPolicy")
        assert policy["spec"]["egress"] == [
            {
                "ports": [{"port": 6443, "protocol": "TCP"}],
                "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "fd00::1/128"}}],
            }
        ]

    @pytest.mark.parametrize("api_server", [{"cidrs": ["10.0.0.1"]}, {"ports": []}, {"ports": [0]}])
    def test_an_address_without_a_prefix_or_no_port_is_refused(self, api_server):
        with pytest.raises(HelmError):
            render_chart({"networkPolicy": {"apiServer": api_server}}, show_only=[NETWORK_POLICY])

    def test_allow_egress_drops_the_egress_policy_type(self):
        policy = find(
            render_chart({"networkPolicy": {"allowEgress": True}}, show_only=[NETWORK_POLICY]), "NetworkPolicy"
        )
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert "egress" not in policy["spec"]

    def test_the_helm_test_pod_gets_in_and_worker_and_scheduler_pods_do_not(self):
        tasks = [{"name": "inventory", "image": "busybox:1.37.0"}]
        docs = render_chart({"scheduler": {"tasks": tasks}}, show_only=[NETWORK_POLICY, self.TEST_POD, self.CRONJOB])
        policy = find(docs, "NetworkPolicy")
        test_pod = find(docs, "Pod")
        assert self.admitted(policy, test_pod["metadata"]["labels"])
        cronjob = find(docs, "CronJob")
        scheduler_labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        assert not self.admitted(policy, scheduler_labels)
        # Worker Jobs carry the release labels plus app=<prefix>-worker and their task.
        worker = {
            "app": "leviathan-worker",
            "app.kubernetes.io/name": "leviathan",
            "app.kubernetes.io/instance": "leviathan",
            "leviathan.io/task": "inventory",
        }
        assert not self.admitted(policy, worker)
        assert not self.admitted(policy, {})

    def test_another_release_test_pod_stays_out(self):
        (policy,) = render_chart(show_only=[NETWORK_POLICY], name="other")
        (test_pod,) = render_chart(show_only=[self.TEST_POD], name="leviathan")
        assert not self.admitted(policy, test_pod["metadata"]["labels"])

    def test_extra_sources_and_egress(self):
        monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        values = {"networkPolicy": {"extraIngressFrom": [monitoring], "allowEgress": True}}
        (policy,) = render_chart(values, show_only=[NETWORK_POLICY])
        sources = policy["spec"]["ingress"][0]["from"]
        assert len(sources) == 2
        assert sources[1] == monitoring
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert "egress" not in policy["spec"]

    def test_can_be_disabled(self):
        docs = render_chart({"networkPolicy": {"enabled": False}})
        assert [d for d in docs if d["kind"] == "NetworkPolicy"] == []


class TestServerLimits:
    def test_defaults_reach_the_server(self):
        (deployment,) = render_chart(show_only=[DEPLOYMENT])
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args == [
            "serve",
            "--host=0.0.0.0",
            "--port=8000",
            "--max-connections=100",
            "--max-header-bytes=16384",
            "--header-timeout=10",
            "--keep-alive-timeout=5",
        ]

    def test_values_override_them(self):
        server = {"maxConnections": 7, "maxHeaderBytes": 4096, "headerTimeoutSeconds": 3, "keepAliveTimeoutSeconds": 2}
        (deployment,) = render_chart({"controlPlane": {"server": server}}, show_only=[DEPLOYMENT])
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[3:] == [
            "--max-connections=7",
            "--max-header-bytes=4096",
            "--header-timeout=3",
            "--keep-alive-timeout=2",
        ]

    @pytest.mark.parametrize(
        "server",
        [
            {"maxConnections": 0},
            {"maxHeaderBytes": 100},
            {"headerTimeoutSeconds": "10"},
            {"keepAliveTimeoutSeconds": 0},
        ],
    )
    def test_schema_refuses_nonsense(self, server):
        with pytest.raises(HelmError):
            render_chart({"controlPlane": {"server": server}}, show_only=[DEPLOYMENT])
