"""manifest.py: YAML -> values with the position of every node, and YAML traps as diagnostics."""

from __future__ import annotations

import os
from pathlib import Path

from provisioner.manifest import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    NODE_BUDGET,
    Document,
    load_document,
    parse_document,
)


def parse(text: str) -> Document:
    return parse_document(text.encode("utf-8"), "f.yaml")


def codes(document: Document) -> list[tuple[int, int, str]]:
    return [(d.line, d.column, d.code) for d in document.diagnostics]


def test_values_and_positions_are_one_based() -> None:
    document = parse("a: 1\nlist:\n  - x\n  - {k: v}\n")
    assert document.value == {"a": 1, "list": ["x", {"k": "v"}]}
    assert document.positions[("a",)] == (1, 4)
    assert document.positions[("list", 0)] == (3, 5)
    assert document.positions[("list", 1, "k")] == (4, 9)
    assert document.key_positions[("list", 1, "k")] == (4, 6)
    assert document.key_location(("list",)) == (2, 1)


def test_location_falls_back_to_the_nearest_ancestor() -> None:
    document = parse("outer:\n  inner: x\n")
    assert document.location(("outer", "inner", "missing", 3)) == (2, 10)
    assert document.location(("nowhere",)) == (1, 1)
    assert Document(file="x", value={}).location(("a",)) == (1, 1)


def test_yaml_11_scalars_keep_their_source_text() -> None:
    document = parse("a: no\nb: 1.10\nc: 0x1F\nd: ~\ne: '1'\n")
    assert document.value == {"a": False, "b": 1.1, "c": 31, "d": None, "e": "1"}
    assert document.scalar_text == {("a",): "no", ("b",): "1.10", ("c",): "0x1F", ("d",): "~"}


def test_keys_are_always_text_and_timestamps_stay_text() -> None:
    document = parse("no: 1\n1: 2\nnull: 3\nwhen: 2024-01-01\n")
    assert document.value == {"no": 1, "1": 2, "null": 3, "when": "2024-01-01"}


def test_merge_keys_fill_only_missing_keys() -> None:
    document = parse("base: &b {x: 1, y: 2}\nmerged:\n  y: 9\n  <<: *b\n")
    assert document.value["merged"] == {"y": 9, "x": 1}
    assert document.positions[("merged", "y")] == (3, 6)
    assert document.positions[("merged", "x")] == (1, 14)
    nested = parse("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: [*b]}\n")
    assert nested.value["c"] == {"y": 2, "x": 1}


def test_merge_of_a_scalar_is_an_error() -> None:
    document = parse("a: &a 1\nb: {<<: *a}\n")
    assert document.value is None
    assert codes(document) == [(1, 4, "yaml-syntax")]


def test_all_duplicate_keys_are_reported_and_loading_continues() -> None:
    document = parse("a: 1\nb: 2\na: 3\nb: 4\n")
    assert document.value == {"a": 1, "b": 2}
    assert codes(document) == [(3, 1, "yaml-duplicate-key"), (4, 1, "yaml-duplicate-key")]
    assert (
        document.diagnostics[0].message == "duplicate key 'a' (first defined at line 1, column 1)"
    )


def test_byte_order_mark_is_accepted() -> None:
    assert parse_document(b"\xef\xbb\xbfa: 1\n", "f").value == {"a": 1}


def test_non_utf8_reports_the_byte_position() -> None:
    document = parse_document(b"a: ok\nb: \xc3\x28\n", "f")
    assert codes(document) == [(2, 4, "yaml-encoding")]
    assert document.diagnostics[0].message == "file is not valid UTF-8 (byte 0xc3)"
    assert not document.loaded


def test_control_characters_are_a_syntax_error() -> None:
    document = parse("a: b\x01c\n")
    assert [d.code for d in document.diagnostics] == ["yaml-syntax"]


def test_alias_budget_and_depth_limits() -> None:
    wide = "a: &a [" + ", ".join(["x"] * 200) + "]\nb: [" + ", ".join(["*a"] * 60) + "]\n"
    assert NODE_BUDGET < 200 * 60
    assert [d.code for d in parse(wide).diagnostics] == ["yaml-alias-budget"]
    deep = "a: " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2) + "\n"
    assert [d.code for d in parse(deep).diagnostics] == ["yaml-too-deep"]
    fine = "a: &a [1, 2]\nb: [*a, *a]\n"
    assert parse(fine).value == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


def test_pathological_nesting_is_stopped_before_libyaml_recurses() -> None:
    # 200k nested brackets used to overflow the C stack inside libyaml's composer.
    for depth in (MAX_DEPTH + 10, 1001, 200_000):
        document = parse("a: " + "[" * depth + "]" * depth + "\n")
        assert codes(document) == [(1, 4 + MAX_DEPTH, "yaml-too-deep")]
    mappings = parse("a: " + "{x: " * 100_000 + "1" + "}" * 100_000 + "\n")
    assert [d.code for d in mappings.diagnostics] == ["yaml-too-deep"]
    quoted = parse('a: "' + "[" * 5000 + '"\n')
    assert quoted.value == {"a": "[" * 5000}
    block = parse("".join(" " * i + "k:\n" for i in range(1400)))
    assert codes(block) == [(MAX_DEPTH + 2, MAX_DEPTH + 2, "yaml-too-deep")]


def test_compact_block_nesting_is_stopped_at_the_projects_limit() -> None:
    # PyYAML 6.0.4's libyaml refuses nesting past 1000 levels as a syntax error, and its
    # scanner reads ahead; the project's own limit and position must win on every version.
    for depth in (MAX_DEPTH + 10, 1001, 300_000):
        document = parse("a:\n" + "- " * depth + "x\n")
        assert codes(document) == [(2, 1 + 2 * MAX_DEPTH, "yaml-too-deep")]
    keys = parse("a:\n" + "? " * 2000 + "x\n")
    assert [d.code for d in keys.diagnostics] == ["yaml-too-deep"]


def test_document_start_and_end_markers_are_one_document() -> None:
    assert parse("---\na: 1\n...\n").value == {"a": 1}


def test_load_document_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text("name: 消息助手\n", encoding="utf-8")
    assert load_document(path, "bot.yaml").value == {"name": "消息助手"}
    path.write_bytes(b"a: 1\n" + b"#" * MAX_FILE_BYTES)
    assert [d.code for d in load_document(path, "bot.yaml").diagnostics] == ["yaml-too-large"]
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    document = load_document(folder, "dir.yaml")
    assert [d.code for d in document.diagnostics] == ["file-unreadable"]


def test_a_device_or_fifo_is_refused_without_being_read(tmp_path: Path) -> None:
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it blocking would wait for a writer forever
    for path in (zero, fifo):
        document = load_document(path, path.name)
        assert codes(document) == [(1, 1, "file-not-regular")]
        assert document.diagnostics[0].message == (
            "not a regular file (a device, FIFO or socket); it was not read"
        )
