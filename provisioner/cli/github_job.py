"""What the `github` commands share: the runner's job (context, summary, outputs, client),
loading apps with their secrets masked first, printing untrusted text, and shard results.
Only the CLI layer prints; everything else comes from :mod:`provisioner.github`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.cli.output import (
    echo_app_error,
    echo_workflow_masks,
    mask,
    write_output_file,
)

if TYPE_CHECKING:
    from provisioner.github.actions import ActionsContext
    from provisioner.github.client import GitHubClient
    from provisioner.github.comment import AppFailure
    from provisioner.plan.document import PlanDoc
    from provisioner.workspace import LoadedApp


@dataclass
class Job:
    """The runner's context and where the commands write for it."""

    context: ActionsContext

    def summary(self, text: str) -> None:
        from provisioner.github.actions import append_step_summary

        if self.context.step_summary is not None:
            append_step_summary(self.context.step_summary, text)

    def outputs(self, values: Mapping[str, str]) -> None:
        from provisioner.github.actions import write_outputs

        if self.context.output is not None:
            write_outputs(self.context.output, values)

    @contextmanager
    def client(self) -> Iterator[GitHubClient]:
        from provisioner.github.client import GitHubClient

        with GitHubClient(self.context.token, api_url=self.context.api_url) as client:
            yield client


def start_job(env: Mapping[str, str], *, need_token: bool = True) -> Job:
    """The job's context; the token is never printed (masked, and redacted from our own)."""
    from provisioner.github.actions import mask_commands, read_context

    context = read_context(env, need_token=need_token)
    if context.token:
        mask([context.token])
        echo_workflow_masks(mask_commands([context.token]))
    return Job(context)


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
    from provisioner.github.actions import mask_commands
    from provisioner.render.diagnostics import render_github
    from provisioner.workspace import load_each

    loaded = load_each(apps, bots_dir, env=env, require_secrets=require_secrets, shard=shard)
    secrets = [secret for each in loaded for secret in each.secrets]
    mask(secrets)
    echo_workflow_masks(mask_commands(secrets))
    findings = [finding for each in loaded for finding in (*each.problems, *each.warnings)]
    if findings:
        click.echo(render_github(findings))
    return loaded


def warn(messages: Sequence[str]) -> None:
    from provisioner.github.actions import annotation

    for message in messages:
        click.echo(annotation("warning", message, title="provisioner"), nl=False)


def echo_untrusted(text: str) -> None:
    """Manifest-derived text, which must not be able to issue workflow commands."""
    from provisioner.github.actions import untrusted_block

    click.echo(untrusted_block(text), nl=False)


def failures_of(loaded: Sequence[LoadedApp], planned: Sequence[Any]) -> list[AppFailure]:
    """Every app that could not be loaded or planned, printed as an error line too."""
    from provisioner.github.comment import AppFailure

    failures = [
        AppFailure(each.name, each.error.message, each.error.hint) for each in loaded if each.error
    ]
    failures += [
        AppFailure(each.app.name, each.error.message, each.error.hint)
        for each in planned
        if each.error is not None
    ]
    for failure in failures:
        echo_app_error(failure.app, failure.message, hint=failure.hint)
    return failures


def diagnostics_markdown(loaded: Sequence[LoadedApp]) -> str:
    """Every validation finding as a table (annotations show only ten of each kind)."""
    from provisioner.render.diagnostics import render_markdown

    table = render_markdown(
        [finding for each in loaded for finding in (*each.problems, *each.warnings)]
    )
    return f"\n### Validation\n\n{table}" if table else ""


def failures_markdown(failures: Sequence[AppFailure]) -> str:
    """The apps that could not be planned, for the job summary."""
    from provisioner.github.comment import failure_lines

    return "\n" + "\n".join(failure_lines(failures)) if failures else ""


@dataclass(frozen=True)
class Gathered:
    """The plans a `github plan`/`github drift` run reports: planned here, or merged from
    shard results (then ``loaded`` is empty and ``head_sha`` is theirs, when they say)."""

    loaded: Sequence[LoadedApp]
    docs: list[PlanDoc]
    failures: list[AppFailure]
    head_sha: str | None = None


def gather(
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
    """Merge ``result_files`` (fan-in), or load and plan every app here without a lock
    (plans without secrets unless refreshing)."""
    from provisioner.apply.session import plan_apps

    if result_files:
        if apps or results_out:
            raise click.UsageError(
                "--results merges shard results: give no APP and no --results-out"
            )
        return merged_results(result_files)
    loaded = load_masked(apps, bots_dir, env, require_secrets=False, shard=shard)
    desired = [each.app for each in loaded if each.app is not None]
    planned = plan_apps(
        desired, env, refresh=refresh, allow_empty=allow_empty, concurrency=concurrency
    )
    docs = [each.plan.document for each in planned if each.plan is not None]
    return Gathered(loaded, docs, failures_of(loaded, planned))


def merged_results(files: Sequence[Path]) -> Gathered:
    """The plan documents, failures and head SHA of the shard results ``files``."""
    from provisioner.errors import ConfigError
    from provisioner.github.shards import merge_shard_results

    texts = {}
    for path in files:
        try:
            texts[str(path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the shard result {path}: {getattr(exc, 'strerror', None) or exc}",
                hint="pass the files the shard jobs wrote with --results-out",
            ) from exc
    merged = merge_shard_results(texts)
    for failure in merged.failures:
        echo_app_error(failure.app, failure.message, hint=failure.hint)
    docs = [doc.copy() for doc in merged.plans]
    return Gathered((), docs, list(merged.failures), merged.head_sha)


def write_result(path: Path, text: str, count: int) -> None:
    """A shard job's result file for the fan-in job (``count`` apps in it)."""
    write_output_file(path, text, f"the shard result {path}")
    click.echo(f"Shard result written to {path} ({count} app(s)).")
