"""Sending the summaries: for each app, each ``notify`` target whose ``when`` lists the event
gets one POST through the HTTP skeleton (:mod:`provisioner.http`) — a short timeout, at most
one retry (after a connect error, a timeout, a 429 or 5xx, or the platform's "busy" code),
never a redirect. Nothing here raises: what could not be delivered comes back as a warning
that names the app and the target by its place (``notify[0] (dingtalk)``), never its URL,
and every secret of the app is redacted from the messages, the payloads and the records of
the HTTP libraries' loggers while sending."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import httpx

from provisioner.errors import NotifyError, ProvisionerError
from provisioner.http import API_LOGGER, Retry, RetryPolicy, http_client, retry_after
from provisioner.models import NotifyTarget
from provisioner.notify import dingtalk, feishu, webhook, wecom
from provisioner.notify.summary import Summary
from provisioner.notify.target import Outgoing, Refusal, Resolved
from provisioner.render.texts import DEFAULT_LANG, Lang
from provisioner.secrets import redact, resolve
from provisioner.workspace import LoadedApp


class TargetModule(Protocol):
    """What a target sub-module provides (see :mod:`provisioner.notify.target`)."""

    def outgoing(self, target: Resolved, summary: Summary, lang: Lang, now: float) -> Outgoing: ...

    def refusal(self, response: httpx.Response) -> Refusal | None: ...


TARGETS: Mapping[str, TargetModule] = {
    "dingtalk": dingtalk,
    "feishu": feishu,
    "wecom": wecom,
    "webhook": webhook,
}
DEFAULT_TIMEOUT = 5.0
"""Seconds one attempt may take (connect, send, answer); two attempts at most."""
ATTEMPTS = 2
MAX_WAIT = 5.0
"""Longest pause before the retry, whatever a ``Retry-After`` asks."""
HTTP_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", API_LOGGER)
"""Every logger that may name a request's URL (the API trace's included: a robot's token is
in its path)."""


@dataclass(frozen=True)
class NotifySettings:
    lang: Lang = DEFAULT_LANG
    timeout: float = DEFAULT_TIMEOUT
    backoff: float = 0.5
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


def notify(
    summaries: Sequence[Summary],
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    settings: NotifySettings,
) -> list[str]:
    """Send each summary to its app's targets; the warnings of what was not delivered."""
    apps = {each.name: each for each in loaded if each.app is not None}
    warnings: list[str] = []
    for summary in summaries:
        each = apps.get(summary.app)
        if each is None or each.app is None:
            continue
        targets = [
            (index, target)
            for index, target in enumerate(each.app.settings.notify)
            if summary.event in target.when
        ]
        for index, target in targets:
            problem = _deliver(summary, index, target, each.secrets, env, settings)
            if problem is not None:
                warnings.append(problem)
    return warnings


def _deliver(
    summary: Summary,
    index: int,
    target: NotifyTarget,
    app_secrets: Sequence[str],
    env: Mapping[str, str],
    settings: NotifySettings,
) -> str | None:
    """None when delivered, else the warning (redacted)."""
    name = f"notify[{index}] ({target.type})"
    secrets = list(app_secrets)
    try:
        resolved = Resolved(
            index,
            target.type,
            resolve(target.url, env),
            resolve(target.secret, env) if target.secret else None,
        )
        secrets += [resolved.url, resolved.secret or "", *_url_parts(resolved.url)]
        _check_address(resolved)
        with _redacted_logs(secrets):
            _send(resolved, _clean(summary, secrets), settings)
    except ProvisionerError as exc:
        reason = exc.message
    except Exception as exc:  # a bug must not fail the run the notification is about
        reason = f"internal error ({type(exc).__name__})"
    else:
        return None
    return redact(f"app {summary.app}: could not notify {name}: {reason}", secrets)


def _url_parts(url: str) -> list[str]:
    """The address as httpx writes it, its query values and its last path segment: where a
    robot's token sits (DingTalk's ``access_token``, WeCom's ``key``, Feishu's hook id), so
    that a platform quoting only the token is redacted too."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return []
    segments = [part for part in parsed.path.split("/") if part]
    return [str(parsed), *(value for _, value in parsed.params.multi_items()), *segments[-1:]]


def _check_address(target: Resolved) -> None:
    try:
        url = httpx.URL(target.url)
    except httpx.InvalidURL as exc:
        raise NotifyError("its url is not a web address") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise NotifyError("its url is not an http(s) address")


def _clean(summary: Summary, secrets: Sequence[str]) -> Summary:
    """The summary without any secret value (an error message may quote a request)."""
    return replace(
        summary,
        bots=tuple(redact(bot, secrets) for bot in summary.bots),
        error=redact(summary.error, secrets) if summary.error else None,
    )


def _send(target: Resolved, summary: Summary, settings: NotifySettings) -> None:
    module = TARGETS[target.type]
    outgoing = module.outgoing(target, summary, settings.lang, settings.clock())
    timeout = httpx.Timeout(settings.timeout)
    policy = RetryPolicy(
        attempts=ATTEMPTS,
        backoff_base=settings.backoff,
        backoff_max=MAX_WAIT,
        sleep=settings.sleep,
    )
    with http_client(timeout=timeout, transport=settings.transport) as client:

        def attempt() -> None:
            try:
                response = client.post(
                    outgoing.url, content=outgoing.body, headers=dict(outgoing.headers)
                )
            except httpx.TimeoutException as exc:
                failure = f"no answer within {settings.timeout:g} s"
                raise Retry(NotifyError(failure)) from exc
            except httpx.HTTPError as exc:
                failure = f"the connection failed ({type(exc).__name__})"
                raise Retry(NotifyError(failure)) from exc
            refused = module.refusal(response)
            if refused is None:
                return
            error = NotifyError(f"it refused the message: {refused.reason}")
            if not refused.retry:
                raise error
            wait = retry_after(response, settings.clock())
            raise Retry(error, wait=None if wait is None else min(wait, MAX_WAIT))

        policy.call(attempt)


class _Redacting(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


@contextmanager
def _redacted_logs(secrets: Sequence[str]) -> Iterator[None]:
    """httpx logs every request's URL (INFO): the robot's token must not reach a log."""
    guard = _Redacting(secrets)
    loggers = [logging.getLogger(name) for name in HTTP_LOGGERS]
    for logger in loggers:
        logger.addFilter(guard)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(guard)
