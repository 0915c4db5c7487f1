"""One exception hierarchy for the whole tool.

    ProvisionerError                 expected failure: the CLI prints one line + hint, exit 1
    ├── ManifestError                a manifest cannot be loaded or is invalid (carries Diagnostics)
    ├── ConfigError                  bad command-line input, missing environment variable, ...
    ├── StateError                   recorded state unreadable, unwritable, wrong version, ...
    │   ├── StateConflictError       compare-and-swap refused: the stored serial/lineage moved
    │   ├── StateNotPersistedError   recorded locally, not in the shared store (`state push`)
    │   └── LockedError              another run holds the state lock (names the holder)
    ├── PlanError                    a plan cannot be made or does not match the reviewed one
    │   ├── UnsafePlanError          blocked by a safety rule (exit 3)
    │   └── UnreviewedPlanError      no trusted reviewed plan to apply (exit 3)
    ├── ApiError                     RongCloud answered with a failure (HTTP status / code)
    │   └── RateLimitedError         HTTP 429 or code 1008 after all retries
    ├── TransportError               no usable answer: connect error, timeout, dropped connection
    │   └── AmbiguousWriteError      a mutating call may or may not have been applied
    ├── ConflictError                the server holds a bot the plan did not expect (one change)
    │   └── NotConvergedError        read back after a write, the bot is not as declared
    ├── ApplyError                   an apply stopped part way (exit 4); carries the summary
    ├── DifyError                    a Dify app answered with a failure (HTTP status, Dify's code)
    │   └── DifyUnreachableError     no answer from Dify: connect error, timeout, unusable stream
    ├── PreflightError               a bot's Dify integration failed the pre-flight (apply --check)
    ├── GitHubError                  GitHub's REST API answered with a failure (status, request id)
    │   ├── GitHubRateLimitedError   primary or secondary rate limit outlasted the retries
    │   └── GitHubBodyTooLongError   a comment or issue body over 65,536 characters (422)
    ├── NotifyError                  a chat robot or webhook refused a notification (a warning)
    └── EmulatorError                the local emulator could not start

Every message is written for the user: what is wrong, where, and what to do (``hint``).
Third-party exceptions are translated at the boundary with ``raise ... from exc``.
No message ever contains a secret value.

Running out of file descriptors (EMFILE, ENFILE) is named wherever it happens: an error caused
by it (``from exc``, at any depth) has :data:`OUT_OF_FILES_HINT` as its hint, never the hint of
the place it surfaced ("check the file's permissions", "RongCloud may be down").
"""

from __future__ import annotations

import errno

OUT_OF_FILES_HINT = "too many open files: raise `ulimit -n` or split the run with `--shard`"
_OUT_OF_FILES = (errno.EMFILE, errno.ENFILE)


def is_out_of_files(exc: BaseException) -> bool:
    """True when ``exc`` or any exception it was raised from (or while handling) is an
    OSError for a full file-descriptor table (the process's or the system's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _OUT_OF_FILES:
            return True
        current = current.__cause__ or current.__context__
    return False


class ProvisionerError(Exception):
    """Root of every error the tool raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._hint = hint

    @property
    def hint(self) -> str | None:
        """What to do; :data:`OUT_OF_FILES_HINT` when the error comes from running out of
        file descriptors."""
        return OUT_OF_FILES_HINT if is_out_of_files(self) else self._hint

    @hint.setter
    def hint(self, value: str | None) -> None:
        self._hint = value


class ManifestError(ProvisionerError):
    """A manifest could not be loaded or validated."""


class ConfigError(ProvisionerError):
    """Bad command-line input or environment."""


class StateError(ProvisionerError):
    """Recorded state cannot be read or written."""


class StateConflictError(StateError):
    """A write expected one stored version (serial, lineage) and found another: it was refused
    so that it never overwrites a state it did not read."""


class StateNotPersistedError(StateError):
    """A write was recorded on local disk but could not reach the shared store it must go
    to; the hint gives the exact command that finishes the job (``provisioner state push``).
    What it records was applied: an apply reports it so, and stops issuing calls."""


class LockedError(StateError):
    """Another run holds the state lock."""


class PlanError(ProvisionerError):
    """A plan cannot be made, or it differs from the reviewed one."""


class UnsafePlanError(PlanError):
    """A safety rule blocks the plan."""

    exit_code = 3


class ApiError(ProvisionerError):
    """RongCloud answered, and the answer is a failure."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        http_status: int | None,
        code: int | None,
        error_message: str | None,
        request_id: str | None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.http_status = http_status
        self.code = code
        self.error_message = error_message
        self.request_id = request_id


class RateLimitedError(ApiError):
    """HTTP 429 / code 1008 persisted through every retry."""


class TransportError(ProvisionerError):
    """No usable answer came back (connect error, timeout, dropped connection)."""

    def __init__(self, message: str, *, endpoint: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint


class AmbiguousWriteError(TransportError):
    """A create/update/delete was sent, but whether it took effect is unknown.

    The apply layer settles it by reading the bot back; the client never repeats it blindly.
    """


class ConflictError(ProvisionerError):
    """The server holds something the plan did not expect for one bot: a bot it was to create
    exists with another spec, or a bot it was to update is gone. That change fails; the others
    go on. ``endpoint`` is the call that found it."""

    def __init__(self, message: str, *, endpoint: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint


class NotConvergedError(ConflictError):
    """Read back after the app's writes, a bot the server answered success for is not as
    declared (the server kept a field the update left out, say): that change fails, and the
    state records what the server holds."""


class UnreviewedPlanError(PlanError):
    """There is no trusted reviewed plan for what is being applied (exit 3): no merged pull
    request, no plan comment by the trusted identity, or a plan comment that cannot be read."""

    exit_code = 3


class NoMergedPullRequestError(UnreviewedPlanError):
    """No merged pull request has the commit being applied as its merge commit (a direct
    push, a manual dispatch): the one case ``github apply --auto-approve`` may go on."""


class ApplyError(ProvisionerError):
    """An apply stopped part way; ``exit_code`` 4."""

    exit_code = 4


class EmulatorError(ProvisionerError):
    """The local emulator could not start or serve."""


class GitHubError(ProvisionerError):
    """GitHub's REST API answered, and the answer is a failure.

    ``endpoint`` is ``METHOD /route`` (no host, no query); ``request_id`` is GitHub's
    ``x-github-request-id``, which GitHub support asks for.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None,
        request_id: str | None = None,
        documentation_url: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.status = status
        self.request_id = request_id
        self.documentation_url = documentation_url


class GitHubRateLimitedError(GitHubError):
    """A primary or secondary rate limit was still in force after every allowed wait."""


class GitHubBodyTooLongError(GitHubError):
    """GitHub refused a comment or issue body over 65,536 characters (HTTP 422)."""


class GitLabError(ProvisionerError):
    """GitLab's REST API answered, and the answer is a failure. ``endpoint`` is ``METHOD
    /route`` (no host, no query, never a token); ``status`` the HTTP status."""

    def __init__(
        self, message: str, *, endpoint: str, status: int | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.status = status


class GitLabRateLimitedError(GitLabError):
    """A 429 (or an exhausted ``RateLimit-Remaining``) still in force after every allowed wait."""


class DifyError(ProvisionerError):
    """A Dify app answered, and the answer is a failure (or not Dify's at all).

    ``endpoint`` is ``METHOD /path`` under the app's API base (``GET /info``); ``status`` the
    HTTP status (``None`` when there was no answer; 200 for an ``error`` event in a stream);
    ``code`` and ``dify_message`` come from Dify's error envelope ``{code, message, status}``
    (or the ``error`` event), with the app key redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        code: str | None = None,
        dify_message: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.dify_message = dify_message


class DifyUnreachableError(DifyError):
    """No answer came from Dify: connect error, timeout, or an answer cut short."""


class NotifyError(ProvisionerError):
    """A notification target (DingTalk, Feishu, WeCom robot or a webhook) did not take a
    message: no answer in time, an HTTP failure, or the platform's own error code. Never
    fatal: the command prints it as a warning and keeps its exit status. The message names
    the target by its place in ``notify:`` and its type, never its URL."""


class PreflightError(ProvisionerError):
    """A bot's Dify integration failed the pre-flight, so ``apply --check`` makes no call for
    the bot; the message names the finding at ``file:line:col``."""
