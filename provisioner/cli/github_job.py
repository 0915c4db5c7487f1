"""What the `github` commands share: the runner's job (context, summary, outputs, client),
the secrets bundle (``PROVISIONER_SECRETS``, :mod:`provisioner.secrets.bundle`) merged into
the environment with every value masked first, loading apps with their secrets masked first,
annotations, printing untrusted text, and the plans of a `github plan|drift` run
(:mod:`provisioner.forge.gather`) with their failures. Only the CLI layer prints; everything
else comes from :mod:`provisioner.github`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from provisioner.cli.output import (
    echo_app_error,
    echo_workflow_masks,
    mask,
    write_output_file,
)
from provisioner.forge.comment import AppFailure, failure_lines
from provisioner.forge.gather import Gathered, gather, merged_results
from provisioner.forge.secrets import introduced_by_app, introduced_markdown, introduced_text
from provisioner.forge.wording import GITHUB, Wording
from provisioner.github.actions import (
    ActionsContext,
    annotation,
    append_step_summary,
    mask_commands,
    read_context,
    untrusted_block,
    write_outputs,
)
from provisioner.github.client import GitHubClient
from provisioner.render import diagnostics as render_diagnostics
from provisioner.render.texts import DEFAULT_LANG, Lang, tr
from provisioner.secrets.bundle import BUNDLE_VARIABLE, merge_bundle, parse_bundle
from provisioner.workspace import LoadedApp, load_each


@dataclass
class Job:
    """The runner's context, where the commands write for it, and in which language (a
    :class:`provisioner.forge.runner.RunnerContext`)."""

    context: ActionsContext
    lang: Lang = DEFAULT_LANG

    @property
    def run_url(self) -> str:
        return self.context.run_url

    @property
    def sha(self) -> str:
        return self.context.sha

    def summary(self, text: str) -> None:
        if self.context.step_summary is not None:
            note = tr(self.lang, "summary.cut")
            append_step_summary(self.context.step_summary, text, note=note)

    def outputs(self, values: Mapping[str, str]) -> None:
        if self.context.output is not None:
            write_outputs(self.context.output, values)

    @contextmanager
    def client(self) -> Iterator[GitHubClient]:
        with GitHubClient(self.context.token, api_url=self.context.api_url) as client:
            yield client


def start_job(env: dict[str, str], *, need_token: bool = True, lang: Lang = DEFAULT_LANG) -> Job:
    """The job's context; the token is never printed (masked, and redacted from our own).
    Then the secrets bundle is merged into ``env`` (:func:`use_secrets_bundle`)."""
    context = read_context(env, need_token=need_token)
    if context.token:
        mask([context.token])
        echo_workflow_masks(mask_commands([context.token]))
    use_secrets_bundle(env, workflow=True)
    return Job(context, lang)


def use_secrets_bundle(env: dict[str, str], *, workflow: bool) -> None:
    """Merge the bundle in ``env[PROVISIONER_SECRETS]`` into ``env`` (in place; a variable
    ``env`` sets, not empty, keeps its value: a warning names it when the bundle's differs).
    Every value is masked before anything else happens: in our own streams, and (with
    ``workflow``, in a job) by ``::add-mask::`` for the runner's log. ConfigError naming the
    line of a malformed bundle, never its text."""
    text = env.get(BUNDLE_VARIABLE, "")
    if not text.strip():
        return
    bundle = parse_bundle(text)
    values = [value for value in bundle.values() if value]
    mask(values)
    if workflow:
        echo_workflow_masks(mask_commands(values))
    merged = merge_bundle(env, bundle)
    env.update(merged.env)
    if merged.shadowed:
        names = ", ".join(merged.shadowed)
        warn(
            [
                f"{BUNDLE_VARIABLE} and the job's environment both set {names}: the"
                " environment's value is used"
            ]
        )


def load_masked(
    apps: Sequence[str],
    bots_dir: Path,
    env: Mapping[str, str],
    *,
    require_secrets: bool,
    shard: tuple[int, int] | None,
) -> list[LoadedApp]:
    """The apps, with every secret value masked (runner and our streams) before anything is
    printed, and their validation problems as annotations."""
    loaded = load_each(apps, bots_dir, env=env, require_secrets=require_secrets, shard=shard)
    secrets = [secret for each in loaded for secret in each.secrets]
    mask(secrets)
    echo_workflow_masks(mask_commands(secrets))
    findings = [finding for each in loaded for finding in (*each.problems, *each.warnings)]
    if findings:
        click.echo(render_diagnostics.render_github(findings))
    return loaded


def warn(messages: Sequence[str]) -> None:
    for message in messages:
        click.echo(annotation("warning", message, title="provisioner"), nl=False)


def echo_untrusted(text: str) -> None:
    """Manifest-derived text, which must not be able to issue workflow commands."""
    click.echo(untrusted_block(text), nl=False)


def diagnostics_markdown(loaded: Sequence[LoadedApp], lang: Lang = DEFAULT_LANG) -> str:
    """Every validation finding as a table (annotations show only ten of each kind); the
    findings themselves stay English, as the CLI writes them."""
    table = render_diagnostics.render_markdown(
        [finding for each in loaded for finding in (*each.problems, *each.warnings)]
    )
    return tr(lang, "summary.validation") + table if table else ""


def failures_markdown(failures: Sequence[AppFailure], lang: Lang = DEFAULT_LANG) -> str:
    """The apps that could not be planned, for the job summary."""
    return "\n" + "\n".join(failure_lines(failures, lang)) if failures else ""


def gather_plans(
    apps: Sequence[str],
    bots_dir: Path,
    env: Mapping[str, str],
    *,
    result_files: Sequence[Path],
    results_out: Path | None,
    refresh: bool,
    allow_empty: bool,
    shard: tuple[int, int] | None,
    concurrency: int,
) -> Gathered:
    """Merge ``result_files`` (fan-in), or load (masked) and plan every app here
    (:mod:`provisioner.forge.gather`); every app that could not be planned is printed as
    an error line."""
    if result_files:
        if apps or results_out:
            raise click.UsageError(
                "--results merges shard results: give no APP and no --results-out"
            )
        gathered = merged_results(result_files)
    else:
        loaded = load_masked(apps, bots_dir, env, require_secrets=False, shard=shard)
        gathered = gather(
            loaded, env, refresh=refresh, allow_empty=allow_empty, concurrency=concurrency
        )
    for failure in gathered.failures:
        echo_app_error(failure.app, failure.message, hint=failure.hint)
    return gathered


def introduced_secrets(
    gathered: Gathered, lang: Lang = DEFAULT_LANG, wording: Wording = GITHUB
) -> tuple[str, str]:
    """The job log's lines and the markdown section (summary, comment or note) naming, per
    app, the variables its plan references that the recorded state does not hold yet
    (:func:`provisioner.forge.secrets.introduced_names`): what the apply job's secrets need
    before the merge, in ``wording``'s terms. Both empty when there are none."""
    apps = [each.app for each in gathered.loaded if each.app is not None]
    found = introduced_by_app(gathered.docs, apps)
    return introduced_text(found, wording), introduced_markdown(found, lang, wording)


def write_result(path: Path, text: str, count: int) -> None:
    """A shard job's result file for the fan-in job (``count`` apps in it)."""
    write_output_file(path, text, f"the shard result {path}")
    click.echo(f"Shard result written to {path} ({count} app(s)).")
