"""Pydantic models of the manifests. They mirror ``schemas/*.schema.json``; a test proves both
give the same verdict (tests/test_models.py). Field names are RongCloud's own (camelCase).

String values may hold ``${NAME}`` references (see :mod:`provisioner.secrets`); models keep them
unresolved. ``auth.apiKey`` and ``appSecret`` must be references. Patterns accept any string
holding a reference, because a reference's value is only known at apply time; they run on
Python's ``re`` engine, exactly as the JSON Schema validator does.

``userId``, ``name`` and metadata keys are one line of printable text: no character of
:data:`CONTROL_CHARACTERS` (tabs and newlines included). A metadata value may hold any text.

Not mirrored here (cross-file and semantic rules live in :mod:`provisioner.validate`): unique
``userId`` per app, at most 10 bots per app, one integration per type, plain-http warnings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

APP_FILE = "app.yaml"
"""The file of an app folder that holds its settings; every other manifest is one bot."""
MANY_APPS = 20
"""More apps than this in one run and outputs name apps by count and summarise: the text of
`plan`, `apply` and `drift` (:mod:`provisioner.render.fleet`), progress lines, the git state
branch's commit messages."""

IntegrationType = Literal["webhook", "dify_chat", "dify_completion", "dify_chatflow"]
DIFY_TYPES: frozenset[str] = frozenset({"dify_chat", "dify_completion", "dify_chatflow"})
DIFY_OBJECT_NAME = "RC:TxtMsg"
POLICY_NOTE = "a provisioner policy, not a documented RongCloud limit"
"""Said with the RC:TxtMsg-only rule: no RongCloud source limits a Dify integration's types."""

REFERENCE_PATTERN = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
URL_PATTERN = r"^https?://[^\s/?#]+(?:[/?#]\S*)?$|" + REFERENCE_PATTERN
DIFY_URL_PATTERN = r"^https?://[^\s/?#]+(?:/\S*)?/v1$|" + REFERENCE_PATTERN
SECRET_PATTERN = "^" + REFERENCE_PATTERN + "$"
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
"""A regex class body: the C0 controls (tab, newline, VT, FF, CR, ESC...), DEL, the C1 controls
(NEL U+0085...), and U+2028 and U+2029, Unicode's only line and paragraph separators. Refused
in ``userId``, ``name`` and metadata keys: they would break a line of a plan, a pull-request
comment or its hidden data block."""
_END = r"$(?!\n)"
"""The end of the text in both regex engines (Python's ``$`` also matches before a final
newline; JSON Schema's ECMA-262 ``$`` does not)."""
USER_ID_PATTERN = r"^[^\s" + CONTROL_CHARACTERS + "]+" + _END
ONE_LINE_PATTERN = "^[^" + CONTROL_CHARACTERS + "]*" + _END
"""``name`` and metadata keys: any text on one line (lengths are checked apart)."""
NO_SPACE_PATTERN = r"^\S+$"
ENDPOINT_PATTERN = (
    r"^(?:local|cn|sg|sg-b|na|sa|sau)$|^https://[^\s/?#@]+(?:/[^\s?#]*)?$|"
    r"^http://(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]{1,5})?(?:/[^\s?#]*)?$|"
    + REFERENCE_PATTERN
)

LITERAL_ENDPOINT_PATTERN = ENDPOINT_PATTERN.removesuffix("|" + REFERENCE_PATTERN)
LOCAL_ENDPOINT = "local"
"""The endpoint served by the embedded emulator (it makes its own key and secret)."""


def is_endpoint(value: str) -> bool:
    """True for ``local``, a data center name or an allowed base URL: what a ``${NAME}`` in
    ``endpoint`` must resolve to."""
    return re.search(LITERAL_ENDPOINT_PATTERN, value) is not None


Text128 = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=ONE_LINE_PATTERN)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=32, pattern=ONE_LINE_PATTERN)]
ObjectName = Annotated[str, Field(min_length=1, max_length=32, pattern=NO_SPACE_PATTERN)]
EventName = Annotated[str, Field(min_length=1, pattern=NO_SPACE_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """No field accepts null (as in the schema): an optional key is left out, not empty."""
        if isinstance(data, dict):
            empty = [key for key, value in data.items() if value is None]
            if empty:
                raise ValueError(f"{', '.join(map(str, empty))} must not be null")
        return data


class Auth(_Strict):
    apiKey: Annotated[str, Field(min_length=1, pattern=SECRET_PATTERN, repr=False)]
    """The Dify app key, as a ``${NAME}`` reference."""


class Integration(_Strict):
    type: IntegrationType
    callbackUrl: Annotated[str, Field(min_length=1, pattern=URL_PATTERN)]
    enabled: bool = True
    objectNames: list[ObjectName] | None = None
    events: list[EventName] | None = None
    stream: bool = True
    handleResponse: bool = True
    auth: Auth | None = None

    @model_validator(mode="after")
    def _dify_rules(self) -> Integration:
        """Dify types: ``auth`` required, URL is the API base ending in /v1, only RC:TxtMsg
        (the last is this project's policy: RongCloud documents no such limit)."""
        if self.type not in DIFY_TYPES:
            return self
        if self.auth is None:
            raise ValueError("Dify integrations need auth.apiKey")
        if not re.search(DIFY_URL_PATTERN, self.callbackUrl):
            raise ValueError("Dify callbackUrl must be the API base URL ending in /v1")
        if any(name != DIFY_OBJECT_NAME for name in self.objectNames or ()):
            raise ValueError(f"Dify integrations accept only {DIFY_OBJECT_NAME} ({POLICY_NOTE})")
        return self


class Bot(_Strict):
    userId: Annotated[str, Field(min_length=1, max_length=64, pattern=USER_ID_PATTERN)]
    name: Name
    type: Text128
    profileUrl: Annotated[str, Field(min_length=1, max_length=256, pattern=URL_PATTERN)]
    metadata: Annotated[dict[MetadataKey, Text128], Field(default_factory=dict, max_length=16)]
    integrations: Annotated[list[Integration], Field(min_length=1)]
    protect: bool = False
    """Not sent to RongCloud: blocks the bot's deletion until unprotected in a separate apply."""


STATE_BRANCH_PATTERN = (
    r"^(?!.*\.\.)(?!.*\.lock$)[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$"
)
"""A branch name git accepts: no ``..``, no ``.lock`` ending, no empty or dot-led part."""
GIT_REMOTE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A remote's name (``origin``), not a URL: URLs may carry credentials."""
SQL_SCHEMA_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
"""An unquoted PostgreSQL identifier."""


class FileStateSettings(_Strict):
    """``state: {backend: file, path: ...}`` (the default): a JSON file on this machine."""

    backend: Literal["file"] = "file"
    path: Annotated[str, Field(min_length=1)] | None = None
    """Relative to the working directory; default ``.provisioner/state/<app>.json``."""


class GitStateSettings(_Strict):
    """``state: {backend: git, branch: provisioner-state, remote: origin}``: ``<app>.json`` on
    a branch of the manifests' own repository."""

    backend: Literal["git"]
    branch: Annotated[str, Field(max_length=200, pattern=STATE_BRANCH_PATTERN)] = (
        "provisioner-state"
    )
    remote: Annotated[str, Field(max_length=100, pattern=GIT_REMOTE_PATTERN)] = "origin"


class PostgresStateSettings(_Strict):
    """``state: {backend: postgres, dsn: "${PROVISIONER_STATE_DSN}", readDsn:
    "${PROVISIONER_STATE_READ_DSN}", schema: provisioner}``."""

    model_config = ConfigDict(populate_by_name=True)

    backend: Literal["postgres"]
    dsn: Annotated[str, Field(min_length=1, repr=False)]
    """libpq connection string or URI, usually a ``${NAME}`` reference (it is a secret)."""
    readDsn: Annotated[str, Field(min_length=1)] | None = Field(default=None, repr=False)
    """A read-only role's DSN, for the commands that only read when its variables are set
    (:func:`provisioner.state.backends.backend_for`); writes always use ``dsn``."""
    schema_name: Annotated[str, Field(alias="schema", pattern=SQL_SCHEMA_PATTERN)] = "provisioner"


GITLAB_STATE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
"""A Terraform state name GitLab serves under ``/terraform/state/:name`` (no ``/``)."""
GITLAB_PROJECT_PATTERN = (
    r"^(?:[0-9]+|[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+)$"
)
"""A project id (``42``) or its full path (``group/sub/project``)."""
GITLAB_API_PATTERN = r"^https?://[^\s/?#@]+(?:/[^\s?#@]*)?$"
"""An http(s) URL without credentials, query or fragment (``https://gitlab.example.com/api/v4``)."""


class GitLabStateSettings(_Strict):
    """``state: {backend: gitlab}``: GitLab-managed Terraform state, one state per app. In
    GitLab CI nothing else is needed: the project, the API and the token come from the job's
    variables (docs/state.md)."""

    backend: Literal["gitlab"]
    project: Annotated[str, Field(max_length=255, pattern=GITLAB_PROJECT_PATTERN)] | None = None
    """Project id or path; default ``$CI_PROJECT_ID``."""
    apiUrl: Annotated[str, Field(max_length=500, pattern=GITLAB_API_PATTERN)] | None = None
    """The REST API's base URL; default ``$CI_API_V4_URL``."""
    name: Annotated[str, Field(pattern=GITLAB_STATE_NAME_PATTERN)] | None = None
    """The Terraform state's name; default the app's name."""
    caBundle: Annotated[str, Field(min_length=1)] | None = None
    """CA certificates (PEM) to verify GitLab with; default ``$CI_SERVER_TLS_CA_FILE``."""


def _state_backend(value: Any) -> str | None:
    """The discriminator of a ``state`` block: its ``backend`` (``file`` when left out)."""
    if isinstance(value, dict):
        backend = value.get("backend", "file")
        return backend if isinstance(backend, str) else None
    backend = getattr(value, "backend", None)
    return backend if isinstance(backend, str) else None


StateSettings = Annotated[
    Annotated[FileStateSettings, Tag("file")]
    | Annotated[GitStateSettings, Tag("git")]
    | Annotated[PostgresStateSettings, Tag("postgres")]
    | Annotated[GitLabStateSettings, Tag("gitlab")],
    Discriminator(_state_backend),
]
"""Where an app's recorded state lives: one of the four backends."""


DifyMode = Literal["chat", "agent-chat", "advanced-chat", "completion", "workflow", "agent"]
VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class StandInInput(_Strict):
    """One variable of a Dify stand-in app's input form."""

    variable: Annotated[str, Field(min_length=1, max_length=64, pattern=VARIABLE_PATTERN)]
    required: bool = True
    type: Literal["text-input", "paragraph", "select", "number"] = "text-input"
    maxLength: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """The longest text a text-input or paragraph takes (Dify's max_length)."""
    options: Annotated[list[Text128], Field(max_length=100)] = Field(default_factory=list)
    """The values a select takes."""


class StandInApp(_Strict):
    """An app of the Dify stand-in that ``endpoint: local`` serves (docs/check.md)."""

    apiKey: Annotated[str, Field(min_length=1, max_length=512, repr=False)]
    """The key the stand-in accepts: a stand-in key, or a ``${NAME}`` reference."""
    mode: DifyMode
    name: Text128 | None = None
    inputs: Annotated[list[StandInInput], Field(default_factory=list, max_length=32)]
    enabled: bool = True
    published: bool = True
    deleted: bool = False
    """The key outlived its app: every call is 403 "The app no longer exists."."""


class EmulatorSettings(_Strict):
    """The embedded emulator of ``endpoint: local``: its profile and what it serves besides
    the bot API."""

    profile: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    """A probe report, relative to the app folder: the emulator answers as the probed app."""
    dify: Annotated[list[StandInApp], Field(default_factory=list, max_length=32)]


NotifyType = Literal["dingtalk", "feishu", "wecom", "webhook"]
NotifyEvent = Literal["drift", "apply", "failure"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("drift", "apply", "failure")
SIGNED_NOTIFY_TYPES: frozenset[str] = frozenset({"dingtalk", "feishu", "webhook"})
"""The targets that take a signing ``secret`` (a WeCom group robot has none)."""
MAX_NOTIFY_TARGETS = 10
NOTIFY_KEY = "notify"


def is_notify_field(path: str) -> bool:
    """True for a field path (``notify[0].url``) under app.yaml's ``notify``: its variables
    are never required (a notification that cannot be sent is a warning)."""
    return path == NOTIFY_KEY or path.startswith(NOTIFY_KEY + "[")


class NotifyTarget(_Strict):
    """One entry of ``notify:``: where a run's summary goes (docs/notify.md)."""

    type: NotifyType
    url: Annotated[str, Field(min_length=1, pattern=SECRET_PATTERN, repr=False)]
    """The robot's webhook address as a ``${NAME}`` reference: it carries the robot's token."""
    secret: Annotated[str, Field(min_length=1, pattern=SECRET_PATTERN)] | None = Field(
        default=None, repr=False
    )
    """The signing secret (DingTalk, Feishu; for ``webhook`` an HMAC of the body)."""
    when: Annotated[list[NotifyEvent], Field(min_length=1)] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS)
    )

    @model_validator(mode="after")
    def _rules(self) -> NotifyTarget:
        if self.secret is not None and self.type not in SIGNED_NOTIFY_TYPES:
            raise ValueError("a WeCom group robot has no signing secret")
        if len(set(self.when)) != len(self.when):
            raise ValueError("when lists an event twice")
        return self


class AppSettings(_Strict):
    endpoint: Annotated[str, Field(pattern=ENDPOINT_PATTERN)]
    """``local`` (embedded emulator), a data center (cn, sg, sg-b, na, sa/sau), or a
    base URL."""
    appKey: Annotated[str, Field(min_length=1)] | None = None
    appSecret: Annotated[str, Field(pattern=SECRET_PATTERN)] | None = Field(
        default=None, repr=False
    )
    rateLimit: Annotated[float, Field(gt=0, le=100)] | None = None
    """Calls per second for this app key (default 50, at most 100)."""
    drift: Literal["refuse", "revert"] = "refuse"
    """``github apply`` on a bot the merged change sets while the server drifted in other
    fields: refuse it (default), or revert the drift (reported as such)."""
    state: StateSettings = Field(default_factory=FileStateSettings)
    emulator: EmulatorSettings | None = None
    """Only for ``endpoint: local``: the Dify stand-in's apps (ignored, with a warning,
    for any other endpoint)."""
    notify: Annotated[list[NotifyTarget], Field(max_length=MAX_NOTIFY_TARGETS)] = Field(
        default_factory=list
    )
    """Chat robots and webhooks told of drift, applies and failures (docs/notify.md)."""

    @model_validator(mode="after")
    def _credentials(self) -> AppSettings:
        """``appKey`` and ``appSecret`` are required unless the endpoint is ``local``."""
        if self.endpoint != LOCAL_ENDPOINT and (self.appKey is None or self.appSecret is None):
            raise ValueError("appKey and appSecret are required unless endpoint is local")
        return self


class DesiredApp(BaseModel):
    """One validated app folder: what git says should exist."""

    model_config = ConfigDict(frozen=True)

    name: str
    folder: Path
    settings: AppSettings
    bots: tuple[Bot, ...]
    sources: dict[str, str]
    """userId -> manifest file (as given to the user), for messages."""
    settings_at: dict[str, tuple[int, int]] = Field(default_factory=dict)
    """Setting (a top-level key of app.yaml) -> its value's line and column, for messages."""

    def reference_texts(self) -> list[str]:
        """Every string of the app (settings and bots) that holds a ``${NAME}`` reference."""
        found: list[str] = []
        _collect_references(self.settings, found)
        for bot in self.bots:
            _collect_references(bot, found)
        return found


def _collect_references(value: Any, found: list[str]) -> None:
    """The strings holding ``${`` in ``value``, in field order (a model's values are those of
    its ``model_dump``; walked as they are, without dumping the model)."""
    if isinstance(value, str):
        if "${" in value:
            found.append(value)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _collect_references(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_references(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_references(item, found)
