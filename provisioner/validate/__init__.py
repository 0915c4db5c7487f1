"""Validate app folders: JSON Schema + semantic + cross-file rules -> Diagnostics + DesiredApp.

    bots/<app>/app.yaml      app settings   (schemas/app.schema.json)
    bots/<app>/*.yaml|*.yml  one bot each   (schemas/bot.schema.json)

:func:`validate_app` reports every problem of every file of one app in one pass, each pointed
at file, line and column, and builds the :class:`~provisioner.models.DesiredApp` when there is
no error. The JSON Schemas are the contract (run with the ``jsonschema`` library, compiled
once); the pydantic models in :mod:`provisioner.models` mirror them and build the typed app.
Schema errors are translated into messages in :mod:`provisioner.validate.schema`.

Nothing here reads ``os.environ``: the environment is passed in (``env``) and only used to
check that referenced variables are set. No message ever contains a secret value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provisioner.diagnostics import Diagnostic, JsonPath, diagnostic_at, has_errors
from provisioner.diagnostics import diagnostic_order as diagnostic_order  # re-exported
from provisioner.errors import ConfigError
from provisioner.manifest import Document, load_document
from provisioner.models import DesiredApp
from provisioner.secrets import REFERENCE, is_available, unavailable_error
from provisioner.secrets.urls import credential_places

APP_FILE = "app.yaml"
MANIFEST_SUFFIXES = (".yaml", ".yml")
LOOPBACK_HOSTS = frozenset({"localhost", "[::1]"})
ENV_MISSING = "env-missing"
_UNAVAILABLE = re.compile(r"environment variable ([A-Za-z_][A-Za-z0-9_]*) is (?:not set|empty)$")
"""The messages of :func:`provisioner.secrets.unavailable_error`."""
_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


@dataclass(frozen=True)
class AppValidation:
    """The verdict on one app folder.

    ``diagnostics`` are sorted (file, line, column); ``app`` is None when any diagnostic is an
    error (warnings alone keep it). ``files`` lists the bot manifests as displayed.
    """

    name: str
    folder: Path
    diagnostics: list[Diagnostic]
    app: DesiredApp | None
    files: tuple[str, ...] = ()

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "warning")


def _child(folder_shown: str, name: str) -> str:
    """``display_path(folder / name)`` from the folder's display path (no cwd lookup)."""
    return name if folder_shown == "." else f"{folder_shown}/{name}"


def display_path(path: Path) -> str:
    """How messages name ``path``: relative to the working directory when under it."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd().absolute()).as_posix()
    except ValueError:
        return path.as_posix()


def is_app_folder(folder: Path) -> bool:
    """An app folder holds ``app.yaml`` or at least one ``*.yaml``/``*.yml`` manifest."""
    return folder.is_dir() and any(
        child.is_file() and child.suffix in MANIFEST_SUFFIXES for child in folder.iterdir()
    )


def discover_apps(paths: Sequence[Path]) -> list[Path]:
    """The app folders named by ``paths``, in order, without duplicates.

    A path may be an app folder or a folder of app folders (the bots root, ``bots``).
    Raises ConfigError for a path that does not exist, is a file, or holds no app folder.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        for folder in _apps_under(path):
            if folder.absolute() not in seen:
                seen.add(folder.absolute())
                found.append(folder)
    return found


def app_folders_of(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each file replaced by the folder holding it, without duplicates.

    For ``validate --expand-files`` (the pre-commit hook): a commit touching one manifest
    validates its whole app folder, once however many of its files were touched, since
    the cross-file rules (unique ``userId``, 10 bots) need every file of the app.
    """
    folders: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        folder = path.parent if path.is_file() else path
        if folder.absolute() not in seen:
            seen.add(folder.absolute())
            folders.append(folder)
    return folders


def _apps_under(path: Path) -> list[Path]:
    shown = display_path(path)
    if not path.exists():
        raise ConfigError(
            f"{shown} does not exist",
            hint="pass the bots folder (default: bots) or an app folder such as bots/demo",
        )
    if not path.is_dir():
        parent = display_path(path.parent)
        raise ConfigError(
            f"{shown} is a file; validate works on app folders",
            hint=f"pass its app folder instead: provisioner validate {parent}",
        )
    if is_app_folder(path):
        return [path]
    apps = sorted(
        child for child in path.iterdir() if not child.name.startswith(".") and is_app_folder(child)
    )
    if not apps:
        raise ConfigError(
            f"no app folders found in {shown}",
            hint=f"create {shown}/<app>/app.yaml and one YAML file per bot",
        )
    return apps


def bot_files(folder: Path) -> list[Path]:
    """The bot manifests of an app folder, sorted: every ``*.yaml``/``*.yml`` but app.yaml."""
    return sorted(
        child
        for child in folder.iterdir()
        if child.suffix in MANIFEST_SUFFIXES
        and child.name not in (APP_FILE, "app.yml")
        and not child.name.startswith(".")
        and (child.is_file() or child.is_symlink())  # a broken link is reported, not skipped
    )


PARALLEL_MIN_APPS = 64
"""Below this many apps a run stays in one process (a pool costs more than it saves)."""


def validate_apps(
    folders: Sequence[Path], *, env: Mapping[str, str] | None = None, workers: int | None = None
) -> list[AppValidation]:
    """:func:`validate_app` for each folder, in order.

    Large runs (at least :data:`PARALLEL_MIN_APPS` apps) are spread over ``workers`` forked
    processes (default: the CPU count, at most 4): validation is CPU-bound and the apps are
    independent. Where ``fork`` is unavailable, or for small runs, it runs in this process.
    """
    import multiprocessing
    import os

    count = min(os.cpu_count() or 1, 4) if workers is None else workers
    methods = multiprocessing.get_all_start_methods()
    if count <= 1 or len(folders) < PARALLEL_MIN_APPS or "fork" not in methods:
        return [validate_app(folder, env=env) for folder in folders]
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from provisioner.validate.schema import max_bots_per_app, validator

    validator("bot")  # compile the schemas once, before the fork
    validator("app")
    max_bots_per_app()
    context = multiprocessing.get_context("fork")
    chunk = max(1, len(folders) // (count * 8))
    plain_env = None if env is None else dict(env)
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        return list(pool.map(partial(validate_app, env=plain_env), folders, chunksize=chunk))


def validate_app(folder: Path, *, env: Mapping[str, str] | None = None) -> AppValidation:
    """Load and check every manifest of one app folder.

    With ``env`` (``--require-env``), every ``${NAME}`` referenced must be set in it; the error
    names the variable, never a value. Raises ConfigError only when ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise ConfigError(
            f"{display_path(folder)} is not a folder",
            hint="pass an app folder such as bots/demo",
        )
    diagnostics: list[Diagnostic] = []
    settings_doc = _load_settings(folder, diagnostics)
    shown = display_path(folder)
    bot_docs = [load_document(path, _child(shown, path.name)) for path in bot_files(folder)]
    if settings_doc is not None:
        diagnostics.extend(check_document(settings_doc, "app", env=env))
    for document in bot_docs:
        diagnostics.extend(check_document(document, "bot", env=env))
    diagnostics.extend(_cross_file_checks(folder, settings_doc, bot_docs))
    app = None
    if settings_doc is not None and not has_errors(diagnostics):
        app, problems = _build_app(folder, settings_doc, bot_docs)
        diagnostics.extend(problems)
    diagnostics.sort(key=diagnostic_order)
    return AppValidation(
        name=folder.absolute().name,
        folder=folder,
        diagnostics=diagnostics,
        app=app,
        files=tuple(document.file for document in bot_docs),
    )


def check_document(
    document: Document, kind: Literal["bot", "app"], *, env: Mapping[str, str] | None = None
) -> list[Diagnostic]:
    """Every single-file problem of one document: load problems, schema, references, and for
    a bot one integration per type and plain-http warnings (unsorted)."""
    from provisioner.validate import schema as schema_errors

    found = list(document.diagnostics)
    if not document.loaded:
        return found
    found.extend(schema_errors.check(document, kind))
    found.extend(_reference_checks(document, env))
    if kind == "bot":
        found.extend(_bot_checks(document))
    else:
        found.extend(_state_checks(document))
        found.extend(_app_checks(document))
        if env is not None:
            found.extend(_endpoint_value_checks(document, env))
    return found


def _app_checks(document: Document) -> list[Diagnostic]:
    """A warning for ``emulator`` settings that no emulator will read (not ``local``)."""
    endpoint = document.value.get("endpoint")
    if "emulator" not in document.value or not isinstance(endpoint, str):
        return []
    if endpoint == "local" or REFERENCE.search(endpoint):
        return []
    return [
        diagnostic_at(
            document.file,
            document.key_location(("emulator",)),
            ("emulator",),
            "emulator-ignored",
            f"is ignored: only endpoint: local starts the embedded emulator (endpoint is"
            f" {endpoint})",
            "remove it, or pass the stand-in's apps to `provisioner emulator serve"
            " --dify-apps FILE` for an emulator of your own",
            severity="warning",
        )
    ]


def _endpoint_value_checks(document: Document, env: Mapping[str, str]) -> list[Diagnostic]:
    """With ``--require-env``: an ``endpoint`` holding ``${NAME}`` must resolve to a valid
    endpoint (what the plan will call); the message names the variable, never its value."""
    from provisioner.models import is_endpoint

    endpoint = document.value.get("endpoint")
    if not isinstance(endpoint, str):
        return []
    names = list(dict.fromkeys(REFERENCE.findall(endpoint)))
    if not names or any(not is_available(name, env) for name in names):
        return []
    value = REFERENCE.sub(lambda match: env[match.group(1)], endpoint)
    if is_endpoint(value):
        return []
    return [
        diagnostic_at(
            document.file,
            document.location(("endpoint",)),
            ("endpoint",),
            "endpoint-invalid",
            f"the value of {', '.join(names)} is not an endpoint",
            "set it to local, a data center (cn, sg, sg-b, na, sa/sau) or an https:// base URL",
        )
    ]


def _load_settings(folder: Path, diagnostics: list[Diagnostic]) -> Document | None:
    path = folder / APP_FILE
    if path.is_file():
        return load_document(path, display_path(path))
    alternative = folder / "app.yml"
    hint = (
        f"rename {display_path(alternative)} to {APP_FILE}"
        if alternative.is_file()
        else "create it with `endpoint: local` to use the emulator, or a data center "
        "(cn, sg, sg-b, na, sa/sau) with appKey and appSecret"
    )
    diagnostics.append(
        diagnostic_at(
            display_path(path), (1, 1), (), "app-missing", "app settings file is missing", hint
        )
    )
    return None


def _value_at(value: Any, path: JsonPath) -> Any:
    for part in path:
        value = value[part]
    return value


def _strings_with(needle: str, value: Any, path: JsonPath = ()) -> list[tuple[JsonPath, str]]:
    """Every string value holding ``needle``, with its path (keys are not values)."""
    found: list[tuple[JsonPath, str]] = []
    if isinstance(value, str):
        if needle in value:
            found.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, bool | int | float) and item is not None:
                found.extend(_strings_with(needle, item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_strings_with(needle, item, (*path, index)))
    return found


def _reference_checks(document: Document, env: Mapping[str, str] | None) -> list[Diagnostic]:
    """Malformed ``${...}`` references, a reference in the bot's identity (``userId``); with
    ``env``, referenced variables that are unset or empty."""
    found: list[Diagnostic] = []
    if document.dollar_strings is None:
        candidates = _strings_with("${", document.value)
    else:
        candidates = [(path, _value_at(document.value, path)) for path in document.dollar_strings]
    for path, text in candidates:
        position = document.location(path)
        starts = [match.start() for match in REFERENCE.finditer(text)]
        if any(index not in starts for index in _all_indexes(text, "${")):
            found.append(
                diagnostic_at(
                    document.file,
                    position,
                    path,
                    "reference-malformed",
                    "`${` does not start a valid ${NAME} environment reference",
                    "write ${NAME}: letters, digits and underscores, not starting with a digit",
                )
            )
        if path in IDENTITY_PATHS and starts:
            found.append(_identity_reference(document, path))
        if env is not None:
            found.extend(_unavailable(document, path, text, env))
    return found


IDENTITY_PATHS: frozenset[JsonPath] = frozenset({("userId",)})
"""Fields that name a bot: they must be the same text in git, in state and on the server."""


def _identity_reference(document: Document, path: JsonPath) -> Diagnostic:
    return diagnostic_at(
        document.file,
        document.location(path),
        path,
        "reference-in-identity",
        "userId is the bot's identity and cannot come from the environment: state would"
        " record the reference and the server its value, so the plan could never converge",
        "write the userId literally (it is not a secret: every message to the bot names it)",
    )


def _unavailable(
    document: Document, path: JsonPath, text: str, env: Mapping[str, str]
) -> list[Diagnostic]:
    """An ``env-missing`` diagnostic per variable of ``text`` that is unset or empty."""
    found = []
    for name in dict.fromkeys(REFERENCE.findall(text)):
        if not is_available(name, env):
            error = unavailable_error(name, env)
            found.append(
                diagnostic_at(
                    document.file,
                    document.location(path),
                    path,
                    ENV_MISSING,
                    error.message,
                    error.hint,
                )
            )
    return found


def unset_variable(diagnostic: Diagnostic) -> str | None:
    """The variable an ``env-missing`` diagnostic is about (None for any other)."""
    match = _UNAVAILABLE.match(diagnostic.message) if diagnostic.code == ENV_MISSING else None
    return match.group(1) if match else None


def _all_indexes(text: str, needle: str) -> Iterator[int]:
    index = text.find(needle)
    while index != -1:
        yield index
        index = text.find(needle, index + 1)


def _bot_checks(document: Document) -> list[Diagnostic]:
    """One integration per type, and a warning for plain-http URLs off loopback."""
    found: list[Diagnostic] = []
    value = document.value
    integrations = value.get("integrations")
    urls: list[JsonPath] = [("profileUrl",)]
    seen: dict[str, int] = {}
    for index, integration in enumerate(integrations if isinstance(integrations, list) else []):
        if not isinstance(integration, dict):
            continue
        urls.append(("integrations", index, "callbackUrl"))
        kind = integration.get("type")
        if not isinstance(kind, str):
            continue
        if kind in seen:
            path: JsonPath = ("integrations", index, "type")
            found.append(
                diagnostic_at(
                    document.file,
                    document.location(path),
                    path,
                    "duplicate-integration-type",
                    f"a second {kind} integration (the first is integrations[{seen[kind]}])",
                    "RongCloud keeps one integration per type and bot; merge them into one",
                )
            )
        else:
            seen[kind] = index
    for path in urls:
        parent = value if len(path) == 1 else integrations[path[1]]
        url = parent.get(path[-1])
        if isinstance(url, str):
            found.extend(_credential_warnings(document, path, url))
        if isinstance(url, str) and _is_plain_http_off_loopback(url):
            found.append(
                diagnostic_at(
                    document.file,
                    document.location(path),
                    path,
                    "insecure-url",
                    "uses plain http:// to a non-loopback host",
                    "use https:// so the data is encrypted in transit (fails with --strict)",
                    severity="warning",
                )
            )
    return found


def _credential_warnings(document: Document, path: JsonPath, url: str) -> list[Diagnostic]:
    """A warning for each credential written literally into a URL (an error with --strict)."""
    return [
        diagnostic_at(
            document.file,
            document.location(path),
            path,
            "credentials-in-url",
            f"{place} is a credential written literally into the URL",
            "take it from the environment, e.g. ?token=${HOOK_TOKEN} (then it is masked in"
            " every output and only fingerprinted in state); a literal is in every clone of"
            " the repository (fails with --strict)",
            severity="warning",
        )
        for place in credential_places(url)
    ]


def _state_checks(document: Document) -> list[Diagnostic]:
    """``state.path`` outside the working directory (a warning: the state leaves the
    repository), and a literal password in ``state.dsn`` (an error: it is a secret)."""
    from provisioner.secrets.dsn import has_literal_password

    state = document.value.get("state")
    if not isinstance(state, dict):
        return []
    found: list[Diagnostic] = []
    backend, path, dsn = state.get("backend", "file"), state.get("path"), state.get("dsn")
    if backend == "file" and isinstance(path, str) and path and _outside_working_dir(path):
        found.append(
            diagnostic_at(
                document.file,
                document.location(("state", "path")),
                ("state", "path"),
                "state-path-outside",
                "is outside the working directory, so the state leaves the repository",
                "use a relative path without `..` such as .provisioner/state/<app>.json, or"
                " the git or postgres backend to share the state (fails with --strict)",
                severity="warning",
            )
        )
    if backend == "postgres" and isinstance(dsn, str) and has_literal_password(dsn):
        found.append(
            diagnostic_at(
                document.file,
                document.location(("state", "dsn")),
                ("state", "dsn"),
                "secret-literal",
                "holds a literal password; the DSN must come from the environment",
                'write dsn: "${PROVISIONER_STATE_DSN}" and keep the DSN in a secret, or leave'
                " the password out (PGPASSWORD, ~/.pgpass); never commit it",
            )
        )
    return found


def _outside_working_dir(path: str) -> bool:
    """Absolute, or climbing out with ``..`` (``a/../../b``)."""
    import os.path

    if Path(path).is_absolute() or path.startswith("~"):
        return True
    normal = os.path.normpath(path)
    return normal == ".." or normal.startswith(".." + os.sep) or normal.startswith("../")


def _is_plain_http_off_loopback(url: str) -> bool:
    if not url.lower().startswith("http://"):
        return False
    match = _HOST.match(url)
    host = (match.group(1) if match else "").rpartition("@")[2].lower()
    bracketed = host.startswith("[")
    host = host[: host.find("]") + 1] if bracketed else host.partition(":")[0]
    if host in LOOPBACK_HOSTS:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name
        return True


def _cross_file_checks(
    folder: Path, settings_doc: Document | None, bot_docs: list[Document]
) -> list[Diagnostic]:
    """At most 10 bots per app (the assembled-app schema's limit) and unique userIds."""
    from provisioner.validate.schema import max_bots_per_app

    found: list[Diagnostic] = []
    limit = max_bots_per_app()
    if len(bot_docs) > limit:
        names = ", ".join(Path(document.file).name for document in bot_docs)
        found.append(
            diagnostic_at(
                settings_doc.file if settings_doc else display_path(folder / APP_FILE),
                (1, 1),
                (),
                "too-many-bots",
                f"the app has {len(bot_docs)} bots; RongCloud allows at most {limit} per app "
                f"({names})",
                "move some bots to another app folder, or delete their files",
            )
        )
    first_use: dict[str, tuple[str, tuple[int, int]]] = {}
    for document in bot_docs:
        user_id = document.value.get("userId") if document.loaded else None
        if not isinstance(user_id, str):
            continue
        position = document.location(("userId",))
        if user_id not in first_use:
            first_use[user_id] = (document.file, position)
            continue
        other, (line, column) = first_use[user_id]
        found.append(
            diagnostic_at(
                document.file,
                position,
                ("userId",),
                "duplicate-user-id",
                f"'{user_id}' is also the userId of {other}:{line}:{column}",
                "every bot of an app needs its own userId; change one of them",
            )
        )
    return found


def _build_app(
    folder: Path, settings_doc: Document, bot_docs: list[Document]
) -> tuple[DesiredApp | None, list[Diagnostic]]:
    """The typed app from documents the schema accepted (a model disagreement is a diagnostic)."""
    from pydantic import ValidationError

    from provisioner.models import AppSettings, Bot

    problems: list[Diagnostic] = []
    try:
        settings = AppSettings.model_validate(settings_doc.value)
    except ValidationError as exc:
        problems.extend(_model_problems(settings_doc, exc))
    bots = []
    for document in bot_docs:
        try:
            bots.append(Bot.model_validate(document.value))
        except ValidationError as exc:
            problems.extend(_model_problems(document, exc))
    if problems:
        return None, problems
    app = DesiredApp(
        name=folder.absolute().name,
        folder=folder,
        settings=settings,
        bots=tuple(bots),
        sources={bot.userId: document.file for bot, document in zip(bots, bot_docs, strict=True)},
        settings_at={key: settings_doc.location((key,)) for key in settings_doc.value},
    )
    return app, []


def _model_problems(document: Document, exc: Any) -> list[Diagnostic]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        path: JsonPath = tuple(part for part in error["loc"] if isinstance(part, str | int))
        problems.append(
            diagnostic_at(
                document.file,
                document.location(path),
                path,
                "model-invalid",
                str(error["msg"]),
                "the schema accepted this but the model did not; please report this bug",
            )
        )
    return problems
