"""Which variables the apps need, and which a review introduces: the "new secrets" section of
the plan comment (GitHub) and note (GitLab), and what `github secrets` builds on. Pure and
forge-neutral; each forge's words come from its :class:`~provisioner.forge.wording.Wording`.

- :func:`app_needs`: every ``${NAME}`` an app references, where (app.yaml's settings, each
  bot's fields); ``state.readDsn`` is optional (read-only commands use it when it is set);
- :func:`introduced_names`: the references of a plan that the recorded state does not hold
  yet (new bots, new or renamed references), and, for an app never applied, those of its
  app.yaml. A review's plan has no secrets, so these are what the apply job's secrets
  (GitHub) or the project's CI/CD variables (GitLab) must gain before the merge. The
  recorded state's references come from the plan's ``before`` specs and, when the app is at
  hand, from the bots the plan does not change (a shard fan-in job has only the plans: a new
  bot that shares a variable with an unchanged one is then listed too). app.yaml's
  references are not recorded: for an app applied before, a new one there is not seen;
- the texts: :func:`introduced_markdown` / :func:`introduced_text`.

Only names are handled here, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.diagnostics import JsonPath, format_path
from provisioner.forge.wording import GITHUB, Wording
from provisioner.models import APP_FILE, DesiredApp, is_notify_field
from provisioner.plan.document import PlanDoc
from provisioner.render.markdown import markdown_code
from provisioner.render.safe import terminal_safe
from provisioner.render.texts import DEFAULT_LANG, Lang, join, tr
from provisioner.secrets import (
    TEMPLATE_KEY,
    is_available,
    is_sensitive_value,
    references,
)
from provisioner.secrets.bundle import BUNDLE_VARIABLE

READ_DSN_FIELD = "state.readDsn"
_CHANGED = ("create", "adopt", "update")
_RECORDED = ("update", "delete")


@dataclass(frozen=True)
class Use:
    """One place that references a variable: a setting of app.yaml (``bot`` None) or a
    field of a bot."""

    name: str
    file: str
    field: str
    bot: str | None = None

    @property
    def optional(self) -> bool:
        """``state.readDsn`` (without it the read-only commands use ``state.dsn``) and the
        ``notify`` targets (without them a run only warns that it could not notify)."""
        return self.bot is None and (self.field == READ_DSN_FIELD or is_notify_field(self.field))


@dataclass(frozen=True)
class AppNeeds:
    """Every variable one app references, in manifest order."""

    app: str
    folder: str
    uses: tuple[Use, ...]

    def names(self, *, optional: bool | None = None) -> list[str]:
        """The variables, once each (``optional``: only those that are, or are not)."""
        found = dict.fromkeys(use.name for use in self.uses)
        return [name for name in found if optional is None or self._optional(name) == optional]

    def missing(self, env: Mapping[str, str]) -> list[str]:
        """The required variables ``env`` does not hold (unset or empty)."""
        return [name for name in self.names(optional=False) if not is_available(name, env)]

    def _optional(self, name: str) -> bool:
        """Only used by ``state.readDsn``."""
        return all(use.optional for use in self.uses if use.name == name)


def app_needs(app: DesiredApp) -> AppNeeds:
    """Every ``${NAME}`` of the app: app.yaml's settings first, then each bot's fields."""
    folder = app.folder.as_posix()
    app_file = (app.folder / APP_FILE).as_posix()
    settings = app.settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    uses = [Use(name, app_file, field) for field, name in _references_in(settings)]
    for bot in app.bots:
        file = app.sources.get(bot.userId, bot.userId)
        body = bot.model_dump(mode="json", exclude_none=True)
        uses += [Use(name, file, field, bot.userId) for field, name in _references_in(body)]
    return AppNeeds(app.name, folder, tuple(uses))


def _references_in(value: Any, path: JsonPath = ()) -> Iterator[tuple[str, str]]:
    """``(field path, variable)`` for every reference in a JSON value."""
    if isinstance(value, str):
        for name in dict.fromkeys(references(value)):
            yield format_path(path), name
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references_in(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references_in(item, (*path, index))


# --- what a plan introduces -------------------------------------------------------------------


def introduced_names(doc: PlanDoc, app: DesiredApp | None = None) -> list[str]:
    """The variables the plan's bots (and, for an app never applied, its app.yaml)
    reference that the recorded state does not (see the module docstring)."""
    wanted: list[str] = []
    held: set[str] = set()
    for change in doc["changes"]:
        if change["action"] in _CHANGED:
            wanted += _template_names(change["after"])
        if change["action"] in _RECORDED:
            held.update(_template_names(change["before"]))
    if app is not None:
        changed = {change["user_id"] for change in doc["changes"]}
        needs = app_needs(app)
        held.update(
            use.name for use in needs.uses if use.bot is not None and use.bot not in changed
        )
        if doc["state"]["lineage"] is None:
            settings = [use.name for use in needs.uses if use.bot is None and not use.optional]
            wanted = settings + wanted
    return [name for name in dict.fromkeys(wanted) if name not in held]


def _template_names(spec: Any) -> list[str]:
    """The variables of every sensitive marker's template in a canonical spec."""
    if is_sensitive_value(spec):
        return references(spec.get(TEMPLATE_KEY, ""))
    if isinstance(spec, dict):
        return [name for item in spec.values() for name in _template_names(item)]
    if isinstance(spec, list):
        return [name for item in spec for name in _template_names(item)]
    return []


def introduced_by_app(
    docs: Sequence[PlanDoc], apps: Iterable[DesiredApp] = ()
) -> dict[str, list[str]]:
    """App -> :func:`introduced_names`, for the apps that introduce any."""
    by_name = {app.name: app for app in apps}
    found = {doc["app"]: introduced_names(doc, by_name.get(doc["app"])) for doc in docs}
    return {app: names for app, names in found.items() if names}


ADVICE: Mapping[str, str] = {
    "github": (
        f"add them to the apply job's secrets (the {BUNDLE_VARIABLE} bundle; `provisioner github"
        " secrets` lists what each app needs) before merging"
    ),
    "gitlab": (
        "add them to the project's CI/CD variables (masked and protected, in the environments"
        " of the apply and drift jobs) before merging"
    ),
}
"""The job log's advice on each forge (the CLI's own words: English); the comment's and
note's is the catalog's :attr:`~provisioner.forge.wording.Wording.secrets_text`."""


def introduced_markdown(
    introduced: Mapping[str, Sequence[str]],
    lang: Lang = DEFAULT_LANG,
    wording: Wording = GITHUB,
) -> str:
    """The plan comment's (note's) and the summary's section: empty when nothing is new."""
    if not introduced:
        return ""
    rows = [
        f"> - {markdown_code(app)}: {join(lang, (markdown_code(name) for name in names))}"
        for app, names in introduced.items()
    ]
    title = tr(lang, wording.secrets_text, bundle=BUNDLE_VARIABLE, **wording.terms(lang))
    lines = ["", "> [!IMPORTANT]", f"> {title}", *rows, ""]
    return "\n".join(lines) + "\n"


def introduced_text(introduced: Mapping[str, Sequence[str]], wording: Wording = GITHUB) -> str:
    """The job log's lines: empty when nothing is new."""
    advice = ADVICE[wording.forge]
    return "".join(
        terminal_safe(f"{app}: new secrets {', '.join(names)}: {advice}") + "\n"
        for app, names in introduced.items()
    )
