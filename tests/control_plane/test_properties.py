"""Properties over random Authorization headers and random config bytes."""

from __future__ import annotations

import hashlib
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leviathan_config import MAX_SWITCH_BYTES, PATTERNS, read_autonomy_config
from support.contract import SOURCE_ERROR, SOURCE_NOT_MOUNTED, configmap_source
from support.control_plane import TOKEN, bearer, eventually
from support.kubelet_volume import publish

SOURCES = (SOURCE_NOT_MOUNTED, SOURCE_ERROR)
FIXTURES_REUSED = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

# What an HTTP client can put in a header value: visible latin-1 characters and spaces.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",)), max_size=80
)
near_misses = st.sampled_from(
    [f"Bearer {TOKEN}", f"bearer  {TOKEN} ", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN.upper()}", f"Basic {TOKEN}"]
)


@FIXTURES_REUSED
@given(header=st.one_of(header_text, near_misses, header_text.map(lambda s: "Bearer " + s)))
def test_no_200_without_the_token_and_never_5xx(client, header):
    response = client.get("/v1/autonomy/status", headers={"Authorization": header.encode("latin-1")})
    assert response.status_code in (200, 401)
    if response.status_code == 200:
        scheme, _, credentials = header.partition(" ")
        assert scheme.lower() == "bearer"
        assert credentials.strip() == TOKEN


yaml_words = st.sampled_from(
    ["true", "false", "True", "FALSE", "yes", "no", "on", "off", "0", "1", "null", "~", '"false"', "[", "{", "- x", ""]
)
config_texts = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda word, extra: f"autonomy_enabled: {word}\n{extra}".encode(), yaml_words, st.text(max_size=40)),
    st.builds(lambda a, b: f"autonomy_enabled: {a}\nautonomy_enabled: {b}\n".encode(), yaml_words, yaml_words),
    st.text(alphabet=string.printable, max_size=200).map(str.encode),
    # Tags and values PyYAML parses but cannot build, and nesting deep enough to recurse out.
    st.builds(
        lambda value: f"autonomy_enabled: false\nx: {value}\n".encode(),
        st.sampled_from(
            ["!!int abc", "!!float x", "!!timestamp x", "!!set [1]", "2024-02-30", "!!binary ?", "9" * 4400]
        )
        | st.integers(1, 4000).map(lambda depth: "[" * depth),
    ),
    st.sampled_from([b"? [a]\n: 1\n", b"{a: 1}: 2\n", b"autonomy_enabled: true\n? {x: [y]}\n: z\n"]),
    # Texts of the switch grammar, as they are and with a byte YAML tools disagree about appended.
    st.from_regex(PATTERNS["grammar"], fullmatch=True).map(str.encode),
    st.builds(
        lambda text, tail: text.encode() + tail,
        st.from_regex(PATTERNS["grammar"], fullmatch=True),
        st.sampled_from([b"\r\n", b"\n\n", b" # c", b"\t", b"\xef\xbb\xbf", b"\nx: 1\n", b"\n...\n"]),
    ),
)


@FIXTURES_REUSED
@given(content=config_texts)
def test_any_config_bytes_give_a_runbook_source(client, mount, config_path, content):
    publish(mount, {"dev.yaml": content})
    # The reader reads at most MAX_SWITCH_BYTES + 1 bytes (enough to know the file is too big),
    # and the digest is of what it read.
    digest = hashlib.sha256(content[: MAX_SWITCH_BYTES + 1]).hexdigest() if content else None
    eventually(lambda: client.get("/v1/autonomy", headers=bearer()).json()["config_sha256"] == digest)
    response = client.get("/v1/autonomy/status", headers=bearer())
    assert response.status_code == 200
    answer = response.json()
    assert answer["source"] in (configmap_source(config_path), *SOURCES)
    # The API says exactly what the shared reader says, with the fail-safe default.
    expected = read_autonomy_config(config_path)
    assert answer == {"autonomy_enabled": expected.enabled_or(True), "source": expected.source}
    if answer["source"] == configmap_source(config_path):
        assert isinstance(expected.document["autonomy_enabled"], bool)
    # Loaded exactly when the bytes are of the switch grammar.
    in_grammar = len(content) <= MAX_SWITCH_BYTES and re.fullmatch(PATTERNS["grammar"], content.decode("latin-1"))
    assert (answer["source"] == configmap_source(config_path)) is bool(in_grammar)
