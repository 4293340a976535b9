"""hack/container_images.py's choices that need no engine: the base it asks for, and pip's CA bundle."""

from __future__ import annotations

import container_images
import pytest

from support.dockerfile import read_dockerfile
from support.paths import REPO


def test_the_base_is_the_dockerfiles_own():
    bases = {read_dockerfile(REPO / "images" / name / "Dockerfile").final.base for name in container_images.IMAGES}
    assert bases == {container_images.dockerfile_base()}


def test_the_debian_base_tag_follows_its_recipe(monkeypatch):
    tag = container_images.debian_base_tag()
    assert tag.startswith("localhost/leviathan-python-base:bookworm-")
    monkeypatch.setattr(container_images, "DEBIAN_PACKAGES", (*container_images.DEBIAN_PACKAGES, "curl"))
    assert container_images.debian_base_tag() != tag


@pytest.fixture
def no_pip_config(monkeypatch, tmp_path):
    monkeypatch.delenv("PIP_CERT", raising=False)
    monkeypatch.delenv("PIP_CONFIG_FILE", raising=False)
    monkeypatch.setattr(container_images, "PIP_CONFIG_FILES", ())
    return tmp_path


def test_pip_cert_comes_from_pip_cert(no_pip_config, monkeypatch):
    bundle = no_pip_config / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PIP_CERT", str(bundle))
    assert container_images.pip_cert() == bundle


def test_pip_cert_comes_from_pip_conf(no_pip_config, monkeypatch):
    bundle = no_pip_config / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = no_pip_config / "pip.conf"
    config.write_text(f"[global]\ntimeout = 60\ncert = {bundle}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    assert container_images.pip_cert() == bundle


def test_no_pip_cert_or_a_missing_file_passes_no_secret(no_pip_config, monkeypatch):
    assert container_images.pip_cert() is None
    monkeypatch.setenv("PIP_CERT", str(no_pip_config / "absent.pem"))
    assert container_images.pip_cert() is None
