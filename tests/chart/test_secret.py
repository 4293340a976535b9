"""The control-plane token Secret: generated once, or brought by the user."""

from __future__ import annotations

import base64
import string

import jmespath

from support.helm import find, render_chart

SECRET = "templates/secret.yaml"


def generated_token() -> str:
    (secret,) = render_chart(show_only=[SECRET])
    assert secret["metadata"]["name"] == "leviathan-secrets"
    assert secret["type"] == "Opaque"
    assert list(secret["data"]) == ["LEVIATHAN_CONTROL_PLANE_TOKEN"]
    return base64.b64decode(secret["data"]["LEVIATHAN_CONTROL_PLANE_TOKEN"]).decode()


class TestGeneratedSecret:
    def test_token_is_present_and_strong(self):
        token = generated_token()
        assert len(token) >= 32
        assert set(token) <= set(string.ascii_letters + string.digits)


class TestExistingSecret:
    def test_no_secret_is_rendered_and_the_existing_one_is_mounted(self):
        values = {"auth": {"existingSecret": "my-token", "existingSecretKey": "token"}}
        docs = render_chart(values)
        assert [d for d in docs if d["kind"] == "Secret"] == []
        for kind, name in (("Deployment", "leviathan-control-plane"), ("Pod", "leviathan-test-status")):
            doc = find(docs, kind, name)
            spec = doc["spec"]["template"]["spec"] if kind == "Deployment" else doc["spec"]
            volume = jmespath.search("volumes[?name=='control-plane-token'] | [0].secret", spec)
            assert volume["secretName"] == "my-token"
            assert volume["items"] == [{"key": "token", "path": "control-plane-token"}]
