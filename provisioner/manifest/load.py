"""Reading a manifest: at most :data:`MAX_FILE_BYTES` of a regular file, UTF-8, one YAML
document whose root is a mapping -> a :class:`Document`. Never raises for bad content."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from yaml.nodes import MappingNode

from provisioner.manifest.build import Builder, node_kind, node_position
from provisioner.manifest.compose import compose
from provisioner.manifest.document import Document, LoadProblem

MAX_FILE_BYTES = 1024 * 1024
"""Files larger than this are rejected before parsing (1 MiB)."""


def load_document(path: Path, display: str) -> Document:
    """Read and parse ``path``; ``display`` is how messages name the file.

    Never raises for bad content: every problem is a diagnostic on the returned Document.
    Only a regular file is read (a symlink to ``/dev/zero`` or a FIFO is refused, never read
    without end), and never more than :data:`MAX_FILE_BYTES` + 1 bytes of it.
    """
    try:
        data = _read_bounded(path)
    except LoadProblem as problem:
        return _failed(display, problem)
    except OSError as exc:
        return _failed(
            display,
            LoadProblem(
                "file-unreadable",
                f"cannot read file: {exc.strerror or type(exc).__name__}",
                (1, 1),
                "check that the file exists and is readable",
            ),
        )
    return parse_document(data, display)


def _read_bounded(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)  # non-blocking: opening a FIFO must not wait for a writer
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LoadProblem(
                "file-not-regular",
                "not a regular file (a device, FIFO or socket); it was not read",
                (1, 1),
                "a manifest is a plain YAML file; remove this entry or point it at one",
            )
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise LoadProblem(
            "yaml-too-large",
            f"file is {max(info.st_size, len(data))} bytes; manifests are limited to"
            f" {MAX_FILE_BYTES} bytes (1 MiB)",
            (1, 1),
            "a bot manifest is a few dozen lines; check that this is the right file",
        )
    return data


def parse_document(data: bytes, display: str) -> Document:
    """Parse manifest bytes (see :func:`load_document`); never raises for bad content."""
    document = Document(file=display, value=None)
    try:
        text = _decode(data)
        root = compose(text)
        if root is None:
            raise LoadProblem(
                "yaml-empty",
                "file is empty",
                (1, 1),
                "write the manifest's keys here, or delete the file",
            )
        if not isinstance(root, MappingNode):
            raise LoadProblem(
                "yaml-not-mapping",
                f"the document is a {node_kind(root)}; a manifest must be a mapping of keys",
                node_position(root),
                "write `key: value` lines at the top level",
            )
        document.value = Builder(document).build(root)
    except LoadProblem as problem:
        document.value = None
        document.diagnostics.append(problem.diagnostic(display))
    return document


def _failed(display: str, problem: LoadProblem) -> Document:
    return Document(file=display, value=None, diagnostics=[problem.diagnostic(display)])


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise LoadProblem(
            "yaml-encoding",
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            (line, column),
            "save the file as UTF-8",
        ) from exc
    return text.removeprefix("\ufeff")
