"""The state document as a backend reads it: bounded, checked, a StateError with a hint for
anything else (through the file backend); and importing the model stays cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.errors import StateError
from provisioner.state import RecordedApp, RecordedBot
from provisioner.state.file.backend import FileBackend


@pytest.fixture
def backend(tmp_path: Path) -> FileBackend:
    return FileBackend(tmp_path / "state" / "demo.json", "demo")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"{not json",
            "state file is not valid JSON"
            " (Expecting property name enclosed in double quotes at line 1, column 2)",
        ),
        (b"\xff\xfe", "state file is not valid JSON (not UTF-8)"),
        (b"[]", "state file is corrupt: the document must be a JSON object"),
        (
            b'{"version": 1, "serial": -1}',
            "state file is corrupt: 'serial' must be a non-negative integer",
        ),
        (
            b'{"version": 1, "serial": 1, "bots": {}, "app": "demo", "lineage": "l", "salt": ""}',
            "state file is corrupt: 'salt' must be a non-empty string",
        ),
        (
            b'{"version": 1, "serial": 1, "bots": {"a": {"spec": []}}, "app": "demo",'
            b' "lineage": "l", "salt": "s"}',
            "state file is corrupt: bots.a.spec must be a JSON object",
        ),
    ],
)
def test_corrupt_state_is_a_state_error_and_never_overwritten(
    backend: FileBackend, content: bytes, message: str
) -> None:
    backend.path.parent.mkdir(parents=True)
    backend.path.write_bytes(content)
    with pytest.raises(StateError) as caught:
        backend.read()
    assert caught.value.message == f"{backend.path}: {message}"
    assert caught.value.hint == "restore it from git or a backup; provisioner will not overwrite it"
    with pytest.raises(StateError):
        backend.write(RecordedApp.fresh("demo").with_bot("a", None))
    assert backend.path.read_bytes() == content


GOOD_HEAD = '{"version": 1, "serial": 1, "app": "demo", "lineage": "l", "salt": "s", "bots": '


@pytest.mark.parametrize(
    ("bots", "message"),
    [
        (
            '{"a": {"spec": {"integrations": "webhook"}}}',
            "bots.a.spec.integrations must be a JSON array",
        ),
        ('{"a": {"spec": {"metadata": ["k", "v"]}}}', "bots.a.spec.metadata must be a JSON object"),
        (
            '{"a": {"spec": {"metadata": {"k": 1}}}}',
            'bots.a.spec.metadata.k must be a string or a {"sensitive": ...} fingerprint',
        ),
        (
            '{"a": {"spec": {"name": ["x"]}}}',
            'bots.a.spec.name must be a string or a {"sensitive": ...} fingerprint',
        ),
        (
            '{"a": {"spec": {"integrations": ["webhook"]}}}',
            "bots.a.spec.integrations[0] must be a JSON object",
        ),
        (
            '{"a": {"spec": {"integrations": [{"callbackUrl": "x"}]}}}',
            "bots.a.spec.integrations[0].type must be a non-empty string",
        ),
        (
            '{"a": {"spec": {"integrations": [{"type": "webhook", "events": "x"}]}}}',
            "bots.a.spec.integrations[0].events must be a JSON array",
        ),
        (
            '{"a": {"spec": {"integrations": [{"type": "webhook", "stream": "yes"}]}}}',
            "bots.a.spec.integrations[0].stream must be true or false",
        ),
        (
            '{"a": {"spec": {"integrations": [{"type": "dify_chat", "auth": "k"}]}}}',
            "bots.a.spec.integrations[0].auth must be a JSON object",
        ),
        (
            '{"a": {"spec": {"integrations": [{"type": "dify_chat", "auth": {"apiKey": 7}}]}}}',
            "bots.a.spec.integrations[0].auth.apiKey must be a string or a"
            ' {"sensitive": ...} fingerprint',
        ),
        ('{"a": {"spec": {}, "server": []}}', "bots.a.server must be a JSON object"),
        ('{"a": {"spec": {}, "protect": "yes"}}', "bots.a.protect must be true or false"),
        ('{"a": {"spec": {}, "source": 7}}', "bots.a.source must be a non-empty string"),
        ('{"": {"spec": {}}}', "a bot id must be a non-empty string"),
        ('{"a": {"spec": {}, "protect": 1, "server": []}}', "bots.a.protect must be true or false"),
        ('{}, "last_run": 42', "'last_run' must be a non-empty string"),
        ('{}, "last_plan": ""', "'last_plan' must be a non-empty string"),
        ('{"a": []}, "last_run": 42', "bots.a must be a JSON object"),
    ],
)
def test_damaged_shapes_the_plan_relies_on_are_state_errors(
    backend: FileBackend, bots: str, message: str
) -> None:
    backend.path.parent.mkdir(parents=True)
    backend.path.write_text(GOOD_HEAD + bots + "}")
    with pytest.raises(StateError) as caught:
        backend.read()
    assert caught.value.message == f"{backend.path}: state file is corrupt: {message}"
    assert caught.value.hint == "restore it from git or a backup; provisioner will not overwrite it"


def test_a_document_without_the_optional_keys_reads_with_their_defaults(
    backend: FileBackend,
) -> None:
    backend.path.parent.mkdir(parents=True)
    bots = '{"a": {"spec": {"userId": "a"}, "source": null}}, "last_run": null, "last_plan": "p"}'
    backend.path.write_text(GOOD_HEAD + bots)
    state = backend.read()
    assert state.bots == {"a": RecordedBot({"userId": "a"})}
    assert (state.last_run, state.last_plan) == (None, "p")
    assert state.data == {
        "app": "demo",
        "bots": {"a": {"protect": False, "server": {}, "spec": {"userId": "a"}}},
        "lineage": "l",
        "salt": "s",
        "serial": 1,
        "version": 1,
        "last_plan": "p",
    }


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_state_error(backend: FileBackend, depth: int) -> None:
    backend.path.parent.mkdir(parents=True)
    backend.path.write_text(
        GOOD_HEAD + '{"a": {"spec": {"x": ' + "[" * depth + "]" * depth + "}}}}"
    )
    with pytest.raises(StateError) as caught:
        backend.read()
    assert caught.value.message == (
        f"{backend.path}: state file is corrupt: nested deeper than 32 levels"
    )


def test_a_link_to_an_endless_device_is_never_read(backend: FileBackend) -> None:
    backend.path.parent.mkdir(parents=True)
    os.symlink("/dev/zero", backend.path)
    with pytest.raises(StateError) as caught:
        backend.read()
    assert caught.value.message == (
        f"{backend.path}: not a regular file; refusing to read it as a state file"
    )
    backend.path.unlink()
    os.mkfifo(backend.path)  # opening a FIFO for reading must not wait for a writer
    with pytest.raises(StateError, match="not a regular file"):
        backend.read()


def test_a_huge_state_file_is_refused_without_reading_it_all(
    backend: FileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("provisioner.state.codec.MAX_STATE_BYTES", 1000)
    backend.path.parent.mkdir(parents=True)
    backend.path.write_text(" " * 3 * 1024 * 1024)
    with pytest.raises(StateError) as caught:
        backend.read()
    assert caught.value.message == (
        f"{backend.path}: state file is over 1000 bytes (1048576 read); it is not a state"
    )


def test_newer_version_is_refused(backend: FileBackend) -> None:
    backend.path.parent.mkdir(parents=True)
    document = {"version": 2, "serial": 1, "bots": {}, "app": "demo", "lineage": "l", "salt": "s"}
    backend.path.write_text(json.dumps(document))
    with pytest.raises(StateError) as caught:
        backend.read()
    assert caught.value.message == (
        f"{backend.path}: state version 2 is newer than this provisioner supports (1)"
    )
    assert caught.value.hint == "upgrade provisioner; the file was left untouched"


def test_importing_the_state_model_stays_cheap() -> None:
    code = (
        "import sys, provisioner.state.model, provisioner.state\n"
        "heavy = {'filelock', 'psycopg', 'subprocess', 'pydantic',"
        " 'provisioner.state.file.backend', 'provisioner.state.git.backend',"
        " 'provisioner.state.postgres.backend'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"
