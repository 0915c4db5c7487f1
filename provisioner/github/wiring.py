"""What `github secrets` reports: each app's variables and where they are used, the bundle
templates of the apply and plan jobs, and what this environment lacks. Pure; the variables
themselves come from :mod:`provisioner.forge.secrets` (shared with the plan's "new secrets"
section on both forges). Only names are handled here, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.forge.secrets import AppNeeds
from provisioner.render.safe import terminal_safe
from provisioner.secrets import is_available
from provisioner.secrets.bundle import BUNDLE_VARIABLE

PLAN_BUNDLE_VARIABLE = "PROVISIONER_PLAN_SECRETS"
"""The secret the example plan workflow passes: the read-only DSNs, nothing else."""


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
