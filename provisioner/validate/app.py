"""One app folder -> every Diagnostic of its manifests, and the DesiredApp when none is an error.

Each document is checked on its own (:func:`check_document`: load problems, JSON Schema,
``${NAME}`` references, semantic rules), then the files together (:mod:`.rules`), then the
pydantic models build the typed app.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from provisioner.diagnostics import (
    Diagnostic,
    JsonPath,
    diagnostic_at,
    diagnostic_order,
    display_path,
    has_errors,
)
from provisioner.errors import ConfigError
from provisioner.manifest import Document, load_document
from provisioner.models import APP_FILE, AppSettings, Bot, DesiredApp
from provisioner.validate import schema
from provisioner.validate.folders import bot_files, display_child
from provisioner.validate.notify import explain_notify
from provisioner.validate.references import reference_checks
from provisioner.validate.rules import (
    app_checks,
    bot_checks,
    cross_file_checks,
    endpoint_value_checks,
    state_checks,
)


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
    count = min(os.cpu_count() or 1, 4) if workers is None else workers
    methods = multiprocessing.get_all_start_methods()
    if count <= 1 or len(folders) < PARALLEL_MIN_APPS or "fork" not in methods:
        return [validate_app(folder, env=env) for folder in folders]
    schema.validator("bot")  # compile the schemas once, before the fork
    schema.validator("app")
    schema.max_bots_per_app()
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
    bot_docs = [load_document(path, display_child(shown, path.name)) for path in bot_files(folder)]
    if settings_doc is not None:
        diagnostics.extend(check_document(settings_doc, "app", env=env))
    for document in bot_docs:
        diagnostics.extend(check_document(document, "bot", env=env))
    diagnostics.extend(cross_file_checks(folder, settings_doc, bot_docs))
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
    found = list(document.diagnostics)
    if not document.loaded:
        return found
    found.extend(explain_notify(document, schema.check(document, kind)))
    found.extend(reference_checks(document, env))
    if kind == "bot":
        found.extend(bot_checks(document))
    else:
        found.extend(state_checks(document))
        found.extend(app_checks(document))
        if env is not None:
            found.extend(endpoint_value_checks(document, env))
    return found


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


def _build_app(
    folder: Path, settings_doc: Document, bot_docs: list[Document]
) -> tuple[DesiredApp | None, list[Diagnostic]]:
    """The typed app from documents the schema accepted (a model disagreement is a diagnostic)."""
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


def _model_problems(document: Document, exc: ValidationError) -> list[Diagnostic]:
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
