"""Text that a manifest, a file name or a server controls, made safe to show.

On a terminal: control characters (ANSI/OSC escape sequences start with ESC, ``\\x1b``),
newlines, bidirectional overrides ("Trojan Source") and zero-width characters are shown as
``\\u202e``-style escapes, so a userId cannot recolour, rewrite or hide a line of the plan.
In markdown (a pull-request comment, an issue, a job summary): the same, plus inline code
that no backtick can close and text in which ``<`` and ``&`` are entities (no tag, no entity
can start), so a manifest cannot inject markup; and in every value, in code or text alike,
no HTML comment can open or close (:func:`html_comment_safe`), so no value can hide the rest
of a comment or write a line that reads as one of provisioner's markers.
Pure functions.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 (newline and ESC included), DEL, C1 (CSI, OSC...)
    "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"  # bidi, zero-width
    "\u2028\u2029]"  # line and paragraph separators
)
_JSON_ESCAPED = re.compile(
    "[\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\u2028\u2029]"
)
"""What :func:`json.dumps` leaves as it is (it escapes C0 itself) but a terminal must not get."""
_COMMENT_MARK = re.compile("<(?=!--)|(?<=--)>|(?<=--!)>")
"""The ``<`` that opens an HTML comment (``<!--``) and the ``>`` that closes one (``-->``,
and ``--!>``, which HTML also accepts)."""


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every character that could move, hide or restyle terminal output
    written as a ``\\uXXXX`` escape; ``keep_newlines`` for a message of several lines whose
    parts were made safe already."""
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def json_terminal_safe(json_text: str) -> str:
    """JSON text (C0 already escaped by the encoder) with what it kept but a terminal must
    not get written as JSON ``\\uXXXX`` escapes: still valid JSON, same value."""
    return _JSON_ESCAPED.sub(_escape, json_text)


def html_comment_safe(text: str) -> str:
    """``text`` that can neither open nor close an HTML comment: the ``<`` of ``<!--`` and
    the ``>`` of ``-->`` written as ``\\u003c`` / ``\\u003e`` escapes, shown as such in code
    and in text. Every markdown value from a manifest or a server goes through it (by
    :func:`markdown_text`, :func:`markdown_code` or directly for a code block)."""
    return _COMMENT_MARK.sub(_escape, text)


def markdown_text(text: str) -> str:
    """Plain text for a markdown line or table cell: no markup, no unsafe characters."""
    safe = html_comment_safe(terminal_safe(text)).replace("&", "&amp;").replace("<", "&lt;")
    return safe.replace("|", "\\|")


def markdown_code(text: str) -> str:
    """``text`` as inline code that no backtick inside can close (a longer fence, padded
    with spaces when it starts or ends with a backtick), safe in a table cell."""
    safe = html_comment_safe(terminal_safe(text)).replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", safe)), default=0)
    fence = "`" * (longest + 1)
    if longest:
        return f"{fence} {safe} {fence}"
    return f"{fence}{safe}{fence}"


def markdown_fence(text: str) -> str:
    """A code-block fence longer than any backtick run in ``text`` (at least three)."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    return "`" * max(3, longest + 1)


_CHAT_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|~^$])")
_CHAT_LOOKALIKES = str.maketrans({"<": "\uff1c", ">": "\uff1e", "&": "\uff06", "@": "\uff20"})


def chat_markdown_text(text: str) -> str:
    """Plain text for the markdown of a chat robot (DingTalk, WeCom): no control or bidi
    character, every markdown punctuation backslash-escaped, and ``< > & @`` as their
    full-width forms, so that a server's or a pull request's text can neither link, format,
    open a tag (WeCom's ``<font>``, ``<@userid>`` mentions) nor mention anyone. The robots do
    not document their escapes: a renderer that ignores ``\\`` shows it, harmlessly."""
    return _CHAT_MARKUP.sub(r"\\\1", terminal_safe(text)).translate(_CHAT_LOOKALIKES)


def chat_link(url: str) -> str | None:
    """``url`` fit for ``[text](url)`` in a chat robot's markdown: an http(s) address with
    every character that could end or break the link percent-encoded; None otherwise."""
    if not re.match(r"^https?://[^\s/?#]+", url) or _UNSAFE.search(url):
        return None
    return re.sub(r"[\s()<>\[\]\\`\"']", lambda m: f"%{ord(m.group(0)):02X}", url)
