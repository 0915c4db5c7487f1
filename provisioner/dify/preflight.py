"""``provisioner check``: the pre-flight of one Dify integration, with no side effects.

1. ``GET {callbackUrl}/info`` with the app key: 401 the key is rejected; 403 "The app no
   longer exists." the app is gone; any other 403 (current Dify) or a 404 (Dify before
   mid-2024) the app or its API is off; no answer: unreachable.
2. ``mode`` against the integration ``type`` (``dify_chat`` ↔ ``chat``/``agent-chat``,
   ``dify_chatflow`` ↔ ``advanced-chat``, ``dify_completion`` ↔ ``completion``); ``workflow``
   and ``agent`` have no RongCloud type; an agent app needs ``stream: true``; no ``mode``
   (older Dify) is a warning: it cannot be verified.
3. ``GET {callbackUrl}/parameters`` (unless the mode is wrong): 400 ``app_unavailable`` (not
   published or misconfigured); the input form against what RongCloud fills
   (:mod:`~provisioner.dify.inputs`).

Every finding is a :class:`~provisioner.diagnostics.Diagnostic` at the integration's field.
For an app on a real endpoint, a ``callbackUrl`` on a loopback, private or link-local address
is flagged: RongCloud's servers, not this machine, call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.diagnostics import Diagnostic, has_errors
from provisioner.dify.client import APP_GONE, BUSY_CODE, QUOTA_CODE, DifyClient
from provisioner.dify.inputs import input_findings
from provisioner.dify.protocol import (
    MODE_NAMES,
    MODES_FOR_TYPE,
    STREAMING_ONLY_MODES,
    TYPE_FOR_MODE,
)
from provisioner.dify.routing import private_address
from provisioner.dify.targets import Target
from provisioner.errors import DifyError, DifyUnreachableError, ProvisionerError

KEY = ("auth", "apiKey")
URL = ("callbackUrl",)
TYPE = ("type",)
ClientFactory = Callable[[Target], DifyClient]


@dataclass(frozen=True)
class Outcome:
    """What the pre-flight found for one target: its findings, and the Dify app's name and
    mode when ``/info`` answered."""

    target: Target
    diagnostics: tuple[Diagnostic, ...]
    name: str | None = None
    mode: str | None = None

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)


def preflight(target: Target, connect: ClientFactory) -> Outcome:
    """Check one target (see the module docstring); never raises a ProvisionerError."""
    found = address_findings(target)
    if target.base_url is None:
        return Outcome(target, (*found, not_routed(target)))
    info: dict[str, Any] = {}
    try:
        with connect(target) as client:
            info = client.info()
            wrong_mode = mode_findings(target, info.get("mode"))
            found += wrong_mode
            if not has_errors(wrong_mode):  # else its inputs mislead
                found += input_findings(target, client.parameters())
    except DifyError as exc:
        found.append(failure_finding(target, exc))
    except ProvisionerError as exc:  # an app key that cannot be sent
        found.append(target.finding(KEY, "dify-key-invalid", exc.message, exc.hint))
    return Outcome(target, tuple(found), _text(info.get("name")), _text(info.get("mode")))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def address_findings(target: Target) -> list[Diagnostic]:
    """For a real endpoint: a warning when RongCloud's servers cannot reach the URL."""
    reason = None if target.local else private_address(target.base_url or "")
    if reason is None:
        return []
    return [
        target.finding(
            URL,
            "dify-private-address",
            f"{target.base_url} is {reason}: this machine may reach it, RongCloud's servers cannot",
            "RongCloud calls Dify from its data center: give callbackUrl a public https:// "
            "address of the Dify API",
            severity="warning",
        )
    ]


def not_routed(target: Target) -> Diagnostic:
    return target.finding(
        URL,
        "dify-not-routed",
        "endpoint: local calls no Dify outside this machine, and app.yaml lists no Dify "
        "stand-in app (emulator.dify)",
        f"list the app under emulator.dify in app.yaml (apiKey: {target.key_variable}, mode:"
        " ...; see docs/check.md), or point callbackUrl at a Dify on this machine",
    )


# --- the app's mode -----------------------------------------------------------------------


def mode_findings(target: Target, mode: object) -> list[Diagnostic]:
    """``mode`` (from ``/info``) against the integration's ``type`` and ``stream``."""
    kind = target.integration.type
    expected = " or ".join(f"{MODE_NAMES[m]} ({m})" for m in MODES_FOR_TYPE[kind])
    if not isinstance(mode, str) or not mode:
        return [
            _unverifiable(
                target,
                f"Dify did not say the app's mode (Dify before mid-2024):"
                f" whether it is a {expected} app cannot be verified",
            )
        ]
    if mode not in MODE_NAMES:
        return [
            _unverifiable(
                target,
                f"Dify says the app's mode is {mode!r}, which provisioner"
                f" does not know: whether {kind} can call it cannot be verified",
            )
        ]
    name = f"{MODE_NAMES[mode]} app (mode {mode})"
    if mode not in TYPE_FOR_MODE:
        return [unsupported_mode(target, mode, name)]
    if mode not in MODES_FOR_TYPE[kind]:
        right = TYPE_FOR_MODE[mode]
        return [
            target.finding(
                TYPE,
                "dify-mode-mismatch",
                f"the Dify app is a {name}, but {kind} calls {expected} apps",
                f"use type: {right} for this app, or set auth.apiKey to the key of a {expected}"
                " app",
            )
        ]
    if mode in STREAMING_ONLY_MODES and not target.integration.stream:
        return [
            target.finding(
                ("stream",),
                "dify-streaming-required",
                f"the Dify app is an {name}, which answers only in streaming mode, but stream"
                " is false",
                "set stream: true (RongCloud then pushes the answer as it arrives)",
            )
        ]
    return []


def _unverifiable(target: Target, message: str) -> Diagnostic:
    return target.finding(
        TYPE,
        "dify-mode-unknown",
        message,
        "check the app's type in Dify by hand (or upgrade Dify, whose /info names the mode)",
        severity="warning",
    )


def unsupported_mode(target: Target, mode: str, name: str) -> Diagnostic:
    instead = (
        "rebuild it as a Chatflow app (dify_chatflow)"
        if mode == "workflow"
        else "use an Agent app (agent-chat) with dify_chat"
    )
    return target.finding(
        TYPE,
        "dify-mode-unsupported",
        f"the Dify app is a {name}: no RongCloud integration type calls it",
        f"RongCloud calls Chatbot, Agent, Chatflow and Text Generator apps: {instead}",
    )


# --- failures -----------------------------------------------------------------------------


def failure_finding(target: Target, exc: DifyError) -> Diagnostic:
    """The diagnostic for a failed call (see the module docstring)."""
    said = _said(exc)
    if isinstance(exc, DifyUnreachableError):
        return target.finding(URL, "dify-unreachable", exc.message, _unreachable_hint(target))
    if exc.status == 401:
        return target.finding(
            KEY, "dify-key-rejected", f"Dify rejected the app key ({said})", _key_hint(target)
        )
    if exc.status == 403 and exc.dify_message == APP_GONE:
        return target.finding(
            KEY,
            "dify-app-gone",
            f"the Dify app of this key no longer exists ({said})",
            f"set {target.key_variable} to the key of an app that exists (the app's API Access"
            " page in Dify)",
        )
    if exc.status == 403:
        return target.finding(
            KEY,
            "dify-app-unavailable",
            f"the Dify app is disabled, its API service is off or its workspace is archived"
            f" ({said})",
            "enable the app and its API in Dify (the app's API Access page)",
        )
    if exc.status == 404 and exc.endpoint == "GET /info":
        return target.finding(
            URL,
            "dify-app-unavailable",
            f"the Dify app is unavailable ({said}); Dify before mid-2024 answers 404 for a "
            "disabled app or API, and any server does for a URL that is not a Dify API base",
            "enable the app and its API in Dify, and check that callbackUrl ends in /v1",
        )
    if exc.status == 400 and exc.code in ("app_unavailable", "agent_not_published"):
        return target.finding(
            (),
            "dify-app-unpublished",
            f"the Dify app is not published or is misconfigured ({said})",
            "publish the app in Dify (Publish → Update) and check its model settings",
        )
    if exc.status == 429 and exc.code in (BUSY_CODE, QUOTA_CODE):
        busy = exc.code == BUSY_CODE
        what = "kept answering" if busy else "answered"
        return target.finding(
            (),
            "dify-busy" if busy else "dify-quota",
            f"Dify {what} {exc.endpoint} with {said}",
            exc.hint,
        )
    return target.finding(URL, "dify-bad-answer", exc.message, exc.hint)


def _said(exc: DifyError) -> str:
    """``HTTP 401 unauthorized: Access token is invalid``."""
    what = f"HTTP {exc.status}" + (f" {exc.code}" if exc.code else "")
    return what + (f": {exc.dify_message}" if exc.dify_message else "")


def _key_hint(target: Target) -> str:
    if target.routed:
        variable = target.key_variable
        return (
            f"no app of the Dify stand-in (emulator.dify in app.yaml) has the key {variable}"
            f" holds: set {variable} to one of their keys, or add an app with it (docs/check.md)"
        )
    return (
        f"set {target.key_variable} to the key on the app's API Access page in Dify (a "
        "knowledge-base key does not work)"
    )


def _unreachable_hint(target: Target) -> str:
    if target.routed:
        return "the Dify stand-in did not answer: re-run with --debug and report it"
    if target.local:
        return "start the Dify this callbackUrl names on this machine, or fix the URL"
    return (
        "check callbackUrl and the network; RongCloud's servers, not only this machine, must "
        "reach this URL"
    )
