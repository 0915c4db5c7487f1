"""Which variables the apps need, and which a pull request introduces: what
`github secrets` reports and the "new secrets" section of `github plan`. Pure.

- :func:`app_needs`: every ``${NAME}`` an app references, where (app.yaml's settings, each
  bot's fields); ``state.readDsn`` is optional (read-only commands use it when it is set);
- :func:`introduced_names`: the references of a plan that the recorded state does not hold
  yet (new bots, new or renamed references), and, for an app never applied, those of its
  app.yaml. A pull-request plan has no secrets, so these are what the apply job's secrets
  must gain before the merge. The recorded state's references come from the plan's
  ``before`` specs and, when the app is at hand, from the bots the plan does not change (a
  shard fan-in job has only the plans: a new bot that shares a variable with an unchanged
  one is then listed too). app.yaml's references are not recorded: for an app applied
  before, a new one there is not seen;
- the texts: :func:`render_secrets_text` / :func:`secrets_document` and
  :func:`introduced_markdown` / :func:`introduced_text`.

Only names are handled here, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.diagnostics import JsonPath, format_path
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
PLAN_BUNDLE_VARIABLE = "PROVISIONER_PLAN_SECRETS"
"""The secret the example plan workflow passes: the read-only DSNs, nothing else."""
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


_ADVICE = (
    f"add them to the apply job's secrets (the {BUNDLE_VARIABLE} bundle; `provisioner github"
    " secrets` lists what each app needs) before merging"
)


def introduced_markdown(introduced: Mapping[str, Sequence[str]], lang: Lang = DEFAULT_LANG) -> str:
    """The plan comment's and the summary's section: empty when nothing is new."""
    if not introduced:
        return ""
    rows = [
        f"> - {markdown_code(app)}: {join(lang, (markdown_code(name) for name in names))}"
        for app, names in introduced.items()
    ]
    title = tr(lang, "secrets.new", bundle=BUNDLE_VARIABLE)
    lines = ["", "> [!IMPORTANT]", f"> {title}", *rows, ""]
    return "\n".join(lines) + "\n"


def introduced_text(introduced: Mapping[str, Sequence[str]]) -> str:
    """The job log's lines: empty when nothing is new."""
    return "".join(
        terminal_safe(f"{app}: new secrets {', '.join(names)}: {_ADVICE}") + "\n"
        for app, names in introduced.items()
    )


# --- github secrets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unloaded:
    """An app whose manifests could not be read: its variables are not known."""

    app: str
    message: str
    hint: str | None = None


def secrets_document(
    needs: Sequence[AppNeeds], env: Mapping[str, str], failures: Sequence[Unloaded] = ()
) -> dict[str, Any]:
    """The ``--format json`` document of `github secrets`."""
    return {
        "format_version": 1,
        "apps": [_app_document(each, env) for each in needs],
        "missing": missing_names(needs, env),
        "bundle": bundle_template(needs),
        "plan_bundle": bundle_template(needs, optional=True),
        "failures": [
            {"app": failure.app, "message": failure.message, "hint": failure.hint}
            for failure in failures
        ],
    }


def _app_document(needs: AppNeeds, env: Mapping[str, str]) -> dict[str, Any]:
    variables = []
    for name in needs.names():
        uses = [use for use in needs.uses if use.name == name]
        variables.append(
            {
                "name": name,
                "set": is_available(name, env),
                "optional": all(use.optional for use in uses),
                "uses": [{"file": use.file, "field": use.field, "bot": use.bot} for use in uses],
            }
        )
    return {"app": needs.app, "folder": needs.folder, "variables": variables}


def missing_names(needs: Sequence[AppNeeds], env: Mapping[str, str]) -> list[str]:
    """The required variables of every app that ``env`` lacks, once each."""
    return list(dict.fromkeys(name for each in needs for name in each.missing(env)))


def bundle_template(needs: Sequence[AppNeeds], *, optional: bool = False) -> str:
    """``NAME=`` lines, a ``# app`` comment before each app's: the apply job's bundle, or
    (``optional``) the plan job's (the read-only DSNs)."""
    lines: list[str] = []
    seen: set[str] = set()
    for each in needs:
        names = [name for name in each.names(optional=optional) if name not in seen]
        seen.update(names)
        if names:
            lines += [f"# {each.app}", *(f"{name}=" for name in names)]
    return "".join(f"{line}\n" for line in lines)


def render_secrets_text(
    needs: Sequence[AppNeeds], env: Mapping[str, str], failures: Sequence[Unloaded] = ()
) -> str:
    """`github secrets`'s text: each app's variables and where they are used, the bundle
    templates, and what this environment lacks."""
    out: list[str] = []
    for each in needs:
        out += _app_lines(each, env)
    for failure in failures:
        hint = f" (hint: {failure.hint})" if failure.hint else ""
        out.append(f"App {failure.app}: cannot be read: {failure.message}{hint}")
    out += ["", f"{BUNDLE_VARIABLE} (the apply and drift jobs; one NAME=value per line):"]
    out.append(bundle_template(needs).rstrip("\n") or "(no variables)")
    plan = bundle_template(needs, optional=True).rstrip("\n")
    if plan:
        out += ["", f"{PLAN_BUNDLE_VARIABLE} (plan jobs: read-only DSNs only):", plan]
    missing = missing_names(needs, env)
    out.append("")
    if missing:
        out.append(f"Missing from this environment ({len(missing)}): {', '.join(missing)}")
    else:
        out.append("This environment holds every variable the apps need.")
    return terminal_safe("\n".join(out) + "\n", keep_newlines=True)


def _app_lines(needs: AppNeeds, env: Mapping[str, str]) -> list[str]:
    if not needs.uses:
        return [f"App {needs.app} ({needs.folder}): no variables"]
    lines = [f"App {needs.app} ({needs.folder}):"]
    width = max(len(use.name) for use in needs.uses)
    for use in needs.uses:
        status = "set" if is_available(use.name, env) else "missing"
        if use.optional and status == "missing":
            status = "optional"
        lines.append(f"  {use.name:<{width}}  {status:<8}  {use.file}: {use.field}")
    return lines
