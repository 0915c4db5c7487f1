"""One exception hierarchy for the whole tool.

    ProvisionerError                 expected failure: the CLI prints one line + hint, exit 1
    ├── ManifestError                a manifest cannot be loaded or is invalid (carries Diagnostics)
    ├── ConfigError                  bad command-line input, missing environment variable, ...
    ├── StateError                   recorded state unreadable, unwritable, wrong version, ...
    │   ├── StateConflictError       compare-and-swap refused: the stored serial/lineage moved
    │   └── LockedError              another run holds the state lock (names the holder)
    ├── PlanError                    a plan cannot be made or does not match the reviewed one
    │   └── UnsafePlanError          blocked by a safety rule (exit 3)
    ├── ApiError                     RongCloud answered with a failure (HTTP status / code)
    │   └── RateLimitedError         HTTP 429 or code 1008 after all retries
    ├── TransportError               no usable answer: connect error, timeout, dropped connection
    │   └── AmbiguousWriteError      a mutating call may or may not have been applied
    ├── ApplyError                   an apply stopped part way (exit 4); carries the summary
    └── EmulatorError                the local emulator could not start

Every message is written for the user: what is wrong, where, and what to do (``hint``).
Third-party exceptions are translated at the boundary with ``raise ... from exc``.
No message ever contains a secret value.
"""

from __future__ import annotations


class ProvisionerError(Exception):
    """Root of every error the tool raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ManifestError(ProvisionerError):
    """A manifest could not be loaded or validated."""


class ConfigError(ProvisionerError):
    """Bad command-line input or environment."""


class StateError(ProvisionerError):
    """Recorded state cannot be read or written."""


class StateConflictError(StateError):
    """A write expected one stored version (serial, lineage) and found another: it was refused
    so that it never overwrites a state it did not read."""


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


class ApplyError(ProvisionerError):
    """An apply stopped part way; ``exit_code`` 4."""

    exit_code = 4


class EmulatorError(ProvisionerError):
    """The local emulator could not start or serve."""
