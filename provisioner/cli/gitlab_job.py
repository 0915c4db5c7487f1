"""What the `gitlab` commands share: the runner's job (context, log sections, the summary
file, the dotenv report, the client and the trusted user), loading apps with their secrets
masked before anything is printed, and the plans of a `gitlab plan|drift` run. Only the CLI
layer prints; everything else comes from :mod:`provisioner.gitlab` and
:mod:`provisioner.forge`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from provisioner.cli.github_job import use_secrets_bundle
from provisioner.cli.notifying import send_notifications
from provisioner.cli.options import bots_dir_option, env_file_option, lang_option, shard_option
from provisioner.cli.output import echo_app_error, echo_diagnostics, mask
from provisioner.forge.gather import Gathered, gather, merged_results
from provisioner.gitlab.ci import GitLabContext, append_file, dotenv, read_context, section
from provisioner.gitlab.client import GitLabClient, Thread
from provisioner.gitlab.sync import TrustedUser
from provisioner.notify import Summary
from provisioner.notify.summary import PullKind
from provisioner.plan import PlanDoc
from provisioner.render.plan import render_text, summary
from provisioner.render.safe import terminal_safe
from provisioner.render.texts import DEFAULT_LANG, Lang
from provisioner.workspace import LoadedApp, load_each


def job_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """What every `gitlab` command takes besides its own options."""
    for option in reversed(
        (
            click.argument("apps", nargs=-1),
            bots_dir_option,
            env_file_option,
            shard_option,
            click.option(
                "--trusted-user-id",
                type=click.IntRange(min=1),
                metavar="ID",
                help="The user whose notes and issues are believed (default: the token's own"
                " user, GET /user).",
            ),
            click.option(
                "--summary",
                "summary_file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Append the full plan (markdown) to this file: the plan.md artifact.",
            ),
            click.option(
                "--dotenv",
                "dotenv_file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Append the outputs (PROVISIONER_CHANGES, …) to this dotenv report.",
            ),
            click.option(
                "--ca-bundle",
                type=click.Path(path_type=Path, dir_okay=False, exists=True),
                help="CA certificates of an internal GitLab (default: CI_SERVER_TLS_CA_FILE).",
            ),
            lang_option,
        )
    ):
        function = option(function)
    return function


def results_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--results`` (fan-in) and ``--results-out`` (a shard job)."""
    for option in reversed(_RESULTS):
        function = option(function)
    return function


_RESULTS = (
    click.option(
        "--results",
        "result_files",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="Fan-in: merge these shard results (from --results-out); repeatable.",
    ),
    click.option(
        "--results-out",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Shard job: write this job's result as JSON for the fan-in job (no note/issue).",
    ),
)


@dataclass(frozen=True)
class JobFiles:
    """Where the job writes for GitLab: ``--summary`` (plan.md, an artifact people read),
    ``--dotenv`` (``artifacts:reports:dotenv``), ``--ca-bundle``; and ``--lang``, the
    language of what reviewers read (the notes, the issue, plan.md)."""

    summary: Path | None = None
    dotenv: Path | None = None
    ca_bundle: Path | None = None
    lang: Lang = DEFAULT_LANG


@dataclass
class GitLabJob:
    """One GitLab CI job of the loop (a :class:`provisioner.forge.runner.RunnerContext`)."""

    context: GitLabContext
    files: JobFiles
    trusted_user_id: int | None = None

    @property
    def run_url(self) -> str:
        return self.context.job_url

    @property
    def sha(self) -> str:
        return self.context.sha

    @property
    def lang(self) -> Lang:
        return self.files.lang

    def summary(self, text: str) -> None:
        if self.files.summary is not None:
            append_file(self.files.summary, text, "the summary")

    def outputs(self, values: Mapping[str, str]) -> None:
        if self.files.dotenv is not None:
            append_file(self.files.dotenv, dotenv(values), "the dotenv report")

    @contextmanager
    def client(self) -> Iterator[GitLabClient]:
        context = self.context
        with GitLabClient(
            context.token,
            api_url=context.api_url,
            project_id=context.project_id,
            job_token=context.job_token,
            ca_bundle=self.files.ca_bundle or context.ca_file,
        ) as client:
            yield client

    def notify(
        self,
        summaries: Sequence[Summary],
        loaded: Sequence[LoadedApp],
        env: Mapping[str, str],
        where: tuple[Thread, int] | None = None,
        web_url: str = "",
    ) -> None:
        """Each app's ``notify`` targets get its summary, linked to the run (``CI_JOB_URL``,
        else ``CI_PIPELINE_URL``) and to the merge request or issue ``where`` (``web_url``,
        else its page under ``CI_PROJECT_URL``)."""
        context = self.context
        run = context.job_url or context.pipeline_url or None
        number, url = None, None
        if where is not None:
            thread, number = where
            page = f"{context.project_url}/-/{thread}/{number}" if context.project_url else None
            url = web_url or page
        kind: PullKind = "issue" if where is not None and where[0] == "issues" else "merge_request"
        linked = [each.linked(run, number, url, kind) for each in summaries]
        send_notifications(linked, loaded, env, lambda text: warn([text]))

    def trusted(self, client: GitLabClient) -> TrustedUser:
        """``--trusted-user-id``, else the token's own user (``GET /user``)."""
        if self.trusted_user_id is not None:
            return TrustedUser(self.trusted_user_id)
        me = client.me()
        return TrustedUser(me.id, me.username)


def start_job(env: dict[str, str], files: JobFiles, trusted_user_id: int | None) -> GitLabJob:
    """The job's context; both tokens are masked in our own streams before anything is
    printed, then the secrets bundle (if any) is merged into ``env``."""
    context = read_context(env)
    mask([context.token, context.job_token])
    use_secrets_bundle(env, workflow=False)
    return GitLabJob(context, files, trusted_user_id)


def load_masked(
    apps: Sequence[str],
    bots_dir: Path,
    env: Mapping[str, str],
    *,
    require_secrets: bool,
    shard: tuple[int, int] | None,
) -> list[LoadedApp]:
    """The apps, every secret value masked before anything is printed; their validation
    findings in validate's text format."""
    loaded = load_each(apps, bots_dir, env=env, require_secrets=require_secrets, shard=shard)
    mask([secret for each in loaded for secret in each.secrets])
    echo_diagnostics([finding for each in loaded for finding in (*each.problems, *each.warnings)])
    return loaded


def gather_plans(
    apps: Sequence[str],
    bots_dir: Path,
    env: Mapping[str, str],
    *,
    result_files: Sequence[Path],
    refresh: bool,
    allow_empty: bool,
    shard: tuple[int, int] | None,
    concurrency: int,
) -> Gathered:
    """Merge ``result_files`` (fan-in), or load (masked) and plan every app here; every
    app that could not be planned is printed as an error line."""
    if result_files:
        if apps:
            raise click.UsageError("--results merges shard results: give no APP")
        gathered = merged_results(result_files)
    else:
        loaded = load_masked(apps, bots_dir, env, require_secrets=False, shard=shard)
        gathered = gather(
            loaded, env, refresh=refresh, allow_empty=allow_empty, concurrency=concurrency
        )
    for failure in gathered.failures:
        echo_app_error(failure.app, failure.message, hint=failure.hint)
    return gathered


def echo_sections(docs: Sequence[PlanDoc]) -> None:
    """One collapsible log section per app (collapsed when it changes nothing)."""
    at = int(time.time())
    if not docs:
        click.echo("No apps to plan.")
    for doc in docs:
        header = f"{doc['app']}: {'BLOCKED — ' if doc['blocked'] else ''}{summary(doc)}"
        quiet = not (doc["has_changes"] or doc["blocked"] or doc["drift"])
        text = render_text([doc])
        click.echo(
            section(f"provisioner_{doc['app']}", header, text, collapsed=quiet, at=at), nl=False
        )


def warn(messages: Sequence[str]) -> None:
    for message in messages:
        click.echo(f"warning: {terminal_safe(message)}", err=True)
