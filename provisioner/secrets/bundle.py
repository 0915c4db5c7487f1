"""The secrets bundle: every ``${NAME}`` value of a job in one secret, ``PROVISIONER_SECRETS``.

A team keeps one secret per GitHub environment holding ``NAME=value`` lines; the Action
passes it through the environment of its command step, and the `github` commands read it
from there (never a file, never an argument). So a new app's ``RONGCLOUD_<APP>_…`` or a new
bot's ``DIFY_…`` needs a new line in that secret, and no workflow edit.

The format is the common subset of dotenv files, read strictly (an ambiguous line is an
error, never a guess), and nothing is ever evaluated by a shell:

- one ``NAME=value`` per line; ``NAME`` is a variable name (letters, digits, ``_``, not
  starting with a digit), optionally after ``export ``; spaces around ``=`` are allowed;
- blank lines and lines starting with ``#`` are ignored;
- an unquoted value is the rest of the line, trimmed; ``$``, ``\\`` and quotes in it are
  literal; a ``#`` at its start or after whitespace is refused (other readers cut a comment
  there: quote the value);
- ``'single quotes'``: literal, may span lines; a ``'`` inside is written ``'\\''`` (close,
  an escaped quote, reopen), as in the shell (``export --secrets-to`` writes it so);
- ``"double quotes"``: may span lines; escapes ``\\\\``, ``\\"``, ``\\n``, ``\\r``, ``\\t``;
  any other backslash is refused (use single quotes for a literal value);
- after a closing quote only whitespace or a ``# comment``; ``${…}`` is never expanded;
- a name given twice, a name the runner owns (``GITHUB_*``, ``RUNNER_*``, ``ACTIONS_*``) or
  ``PROVISIONER_SECRETS`` itself, and a NUL character are errors;
- ``NAME=`` (empty) is allowed and means "not provided", as an empty variable does.

Errors name the line number, and the variable once it is known; never any text of a value.

Why not python-dotenv: it expands ``${VAR}`` by default, takes the last of duplicate names and
guesses at malformed lines; a bundle is a credential, where a silent guess is a leak or an
outage. The grammar above is small enough to parse here, with every error tested.

Precedence (:func:`merge_bundle`): a variable the job's environment sets (not empty) wins
over the bundle's value for the same name, as a shell's variables win over a ``.env`` file in
docker compose and python-dotenv; the bundle fills in what the environment lacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from provisioner.errors import ConfigError

BUNDLE_VARIABLE = "PROVISIONER_SECRETS"
"""The environment variable holding the bundle (the Action's ``secrets`` input)."""
RESERVED_PREFIXES = ("GITHUB_", "RUNNER_", "ACTIONS_")
"""What the runner sets: a bundle cannot redirect the job's token, files or event."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPORT = re.compile(r"export\s+")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_HINT = (
    'the bundle holds one NAME=value per line (docs/github.md, "One secret for every'
    ' variable"); provisioner never prints its text'
)


@dataclass(frozen=True)
class Merged:
    """The environment with the bundle merged in, and the names both set (the
    environment's value kept)."""

    env: dict[str, str]
    shadowed: tuple[str, ...]


class _Lines:
    """The bundle's lines and where the reader is (line numbers from 1)."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = [line.removesuffix("\r") for line in text.split("\n")]
        self.source = source
        self.index = 0

    def error(self, message: str, line: int | None = None) -> ConfigError:
        number = self.index + 1 if line is None else line
        return ConfigError(f"{self.source}, line {number}: {message}", hint=_HINT)


_Scan = tuple[str, int | None]
"""A line's part of a quoted value, and the index just past its closing quote (None: the
value goes on to the next line)."""
_ScanLine = Callable[[_Lines, str, str], _Scan]


def parse_bundle(text: str, *, source: str = BUNDLE_VARIABLE) -> dict[str, str]:
    """The ``NAME -> value`` pairs of a bundle, in order (see the module docstring);
    ConfigError naming the line (and the variable, never a value) for anything else."""
    reader = _Lines(text, source)
    values: dict[str, str] = {}
    first: dict[str, int] = {}
    while reader.index < len(reader.lines):
        line = reader.lines[reader.index]
        if "\x00" in line:
            raise reader.error("holds a NUL character")
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            start = reader.index + 1
            name, rest = _assignment(reader, line.lstrip())
            if name in first:
                raise reader.error(f"{name} is set twice (first on line {first[name]})")
            values[name], first[name] = _value(reader, name, rest), start
        reader.index += 1
    return values


def _assignment(reader: _Lines, line: str) -> tuple[str, str]:
    """``NAME`` and what follows its ``=``."""
    export = _EXPORT.match(line)
    body = line[export.end() :] if export else line
    name, equals, rest = body.partition("=")
    if not equals:
        raise reader.error("expected NAME=value")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise reader.error(
            "the text before `=` is not a variable name (letters, digits and underscores,"
            " not starting with a digit)"
        )
    if name == BUNDLE_VARIABLE or name.startswith(RESERVED_PREFIXES):
        raise reader.error(
            f"{name} is not for the bundle: the runner sets GITHUB_*, RUNNER_* and ACTIONS_*,"
            f" and {BUNDLE_VARIABLE} is the bundle itself"
        )
    return name, rest


def _value(reader: _Lines, name: str, rest: str) -> str:
    text = rest.lstrip(" \t")
    if text[:1] == "'":
        return _quoted(reader, name, text[1:], _single)
    if text[:1] == '"':
        return _quoted(reader, name, text[1:], _double)
    if re.search(r"(?:^|\s)#", rest):
        raise reader.error(
            f"{name}: an unquoted value with `#` at its start or after a space (other"
            " readers cut a comment there): quote the value"
        )
    return text.strip()


def _quoted(reader: _Lines, name: str, text: str, scan: _ScanLine) -> str:
    """A quoted value from ``text`` (after its opening quote) on, across lines as needed."""
    start = reader.index + 1
    parts: list[str] = []
    while True:
        part, end = scan(reader, name, text)
        parts.append(part)
        if end is not None:
            after = text[end:].strip()
            if after and not after.startswith("#"):
                raise reader.error(f"{name}: unexpected text after the closing quote")
            return "\n".join(parts)
        reader.index += 1
        if reader.index >= len(reader.lines):
            raise reader.error(f"{name}: the quoted value is not closed", line=start)
        text = reader.lines[reader.index]
        if "\x00" in text:
            raise reader.error("holds a NUL character")


def _single(reader: _Lines, name: str, text: str) -> _Scan:
    out: list[str] = []
    index = 0
    while (end := text.find("'", index)) != -1:
        out.append(text[index:end])
        if not text.startswith("\\''", end + 1):
            return "".join(out), end + 1
        out.append("'")  # '\'' : the shell's way to write a quote in a single-quoted value
        index = end + 4
    out.append(text[index:])
    return "".join(out), None


def _double(reader: _Lines, name: str, text: str) -> _Scan:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\\":
            escaped = _ESCAPES.get(text[index + 1 : index + 2])
            if escaped is None:
                raise reader.error(
                    f'{name}: a backslash that is not one of the escapes \\\\ \\" \\n \\r \\t'
                    " (use single quotes for a literal value)"
                )
            out.append(escaped)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out), None


def merge_bundle(env: Mapping[str, str], bundle: Mapping[str, str]) -> Merged:
    """``env`` with the bundle's values for the names it does not set (or sets empty);
    the names both set to different values are ``shadowed`` (the environment wins)."""
    merged = dict(env)
    shadowed = []
    for name, value in bundle.items():
        if not value:
            continue
        if env.get(name):
            if env[name] != value:
                shadowed.append(name)
            continue
        merged[name] = value
    return Merged(merged, tuple(shadowed))
