"""What a CI runner provides the loop's commands, whatever the forge: the run's page and
commit, its variables, and where a job reports (a summary for people, outputs for later
jobs). GitHub Actions: ``GITHUB_*``, the step summary, ``$GITHUB_OUTPUT``
(``cli/github_job.py``); GitLab CI: ``CI_*``, collapsible log sections and a ``plan.md``
artifact, a dotenv report (:mod:`provisioner.gitlab.ci`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class RunnerContext(Protocol):
    """One job of a CI run, as the loop's commands use it."""

    @property
    def run_url(self) -> str:
        """The web page of this run (or job), for links in comments and issues."""
        ...

    @property
    def sha(self) -> str:
        """The commit the run is for."""
        ...

    def summary(self, text: str) -> None:
        """Add ``text`` (markdown) to what people read after the job."""

    def outputs(self, values: Mapping[str, str]) -> None:
        """Hand ``values`` to later jobs."""
