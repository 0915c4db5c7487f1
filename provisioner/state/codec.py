"""The state document as bytes: sorted, stable JSON out; bounded, checked JSON in.

Every backend stores exactly the same document (:func:`dumps_state`), so ``state pull`` from
one and ``state push`` to another move a state between backends unchanged. Reading is bounded
whatever the source: at most :data:`MAX_STATE_BYTES`, nesting at most :data:`MAX_STATE_DEPTH`,
and the shape the plan relies on is checked (:meth:`RecordedApp.from_data`), so a damaged
document is a StateError with a hint, never an internal error.
"""

from __future__ import annotations

import json
import os
import stat
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) does
from pathlib import Path

from provisioner.errors import StateError
from provisioner.state.model import RecordedApp, RecordedBot

MAX_STATE_BYTES = 16 * 1024 * 1024
"""A state holds at most 10 bots of a few KiB each; anything this large is not a state."""

MAX_STATE_DEPTH = 32
"""Nesting of a state document: six levels in practice."""

RESTORE_HINT = "restore it from git or a backup; provisioner will not overwrite it"

_BOTS_PLACEHOLDER = "\x00bots\x00"
_BOTS_LINE = '\n  "bots": "\\u0000bots\\u0000"'
"""How the placeholder's line is encoded: a raw newline never occurs inside a JSON string, so
this can only be the document's own ``bots`` key."""
_BOT_INDENT = "\n    "

Fragments = dict[str, tuple[RecordedBot, str]]
"""userId → (the RecordedBot, its JSON as it appears in the document) for reuse."""


def dumps_state(state: RecordedApp) -> str:
    """Sorted, stable JSON (indent 2, trailing newline): reads well in a git diff.

    Exactly ``json.dumps(state.data, indent=2, sort_keys=True, ensure_ascii=False) + "\\n"``.
    """
    return render_state(state, {})


def render_state(state: RecordedApp, fragments: Fragments) -> str:
    """:func:`dumps_state`, reusing the encoded form of every bot found in ``fragments`` as
    the very same RecordedBot object (recorded state is never mutated in place), and leaving
    in ``fragments`` exactly the bots of ``state``.

    The JSON encoder is pure Python once it indents; encoding only the bot that changed makes
    the write after each call cost the same whatever the number of bots.
    """
    head_doc = {**state.data, "bots": _BOTS_PLACEHOLDER}
    head = json.dumps(head_doc, indent=2, sort_keys=True, ensure_ascii=False)
    encoded: Fragments = {}
    for user_id, bot in state.bots.items():
        known = fragments.get(user_id)
        if known is not None and known[0] is bot:
            encoded[user_id] = known
        else:
            text = json.dumps(bot.data, indent=2, sort_keys=True, ensure_ascii=False)
            encoded[user_id] = (bot, text.replace("\n", _BOT_INDENT))
    fragments.clear()
    fragments.update(encoded)
    if encoded:
        entries = ",\n".join(
            f"    {encode_basestring(user_id)}: {encoded[user_id][1]}"
            for user_id in sorted(encoded)
        )
        bots = "{\n" + entries + "\n  }"
    else:
        bots = "{}"
    before, found, after = head.partition(_BOTS_LINE)
    if not found:  # pragma: no cover - the state document always has its bots key
        raise AssertionError("state document without its bots placeholder")
    return f'{before}\n  "bots": {bots}{after}\n'


def parse_state(raw: bytes, where: str) -> RecordedApp:
    """The state document in ``raw``; StateError naming ``where`` when it is not one."""
    if len(raw) > MAX_STATE_BYTES:
        raise _too_large(where, len(raw))
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(
            f"{where}: state file is not valid JSON ({_json_problem(exc)})", hint=RESTORE_HINT
        ) from exc
    except RecursionError:
        data = None
        too_deep = True
    else:
        too_deep = _depth(data) > MAX_STATE_DEPTH
    if too_deep:
        raise StateError(
            f"{where}: state file is corrupt: nested deeper than {MAX_STATE_DEPTH} levels",
            hint=RESTORE_HINT,
        )
    return RecordedApp.from_data(data, where=where)


def read_state_file(path: Path, where: str | None = None) -> bytes | None:
    """The bytes of the state file ``path`` (None when it does not exist), read with a bound:
    only a regular file, at most :data:`MAX_STATE_BYTES` (a link to ``/dev/zero`` or a FIFO
    is refused, never read without end)."""
    shown = where or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(shown, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateError(
                f"{shown}: not a regular file; refusing to read it as a state file",
                hint="point state.path at a JSON file (provisioner creates it on the first apply)",
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1024 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_STATE_BYTES:
                raise _too_large(shown, size)
        return b"".join(chunks)
    except OSError as exc:
        raise _unreadable(shown, exc) from exc
    finally:
        os.close(fd)


def _unreadable(where: str, exc: OSError) -> StateError:
    return StateError(
        f"{where}: cannot read the state file: {exc.strerror or type(exc).__name__}",
        hint="check the file's permissions",
    )


def _too_large(where: str, size: int) -> StateError:
    return StateError(
        f"{where}: state file is over {MAX_STATE_BYTES} bytes ({size} read); it is not a state",
        hint=RESTORE_HINT,
    )


def _depth(value: object) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_STATE_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "not UTF-8"
