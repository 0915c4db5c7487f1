"""Command line: the only layer that prints. ``main(argv) -> int``; ``run()`` is the script.

Exit codes: 0 success / no changes, 1 error (usage errors too: 2 means "changes present"),
2 changes present (``plan --detailed-exitcode``), 3 blocked by a safety rule, 4 partial apply,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM, handled like Ctrl-C).

Each command lives in its own module (``cli/<name>_cmd.py``), which imports what it needs at
its top. The group loads a command's module only when that command runs (:class:`LazyGroup`,
after pip's ``commands_dict``): ``--version`` and ``--help`` import no command, and
``provisioner plan`` imports only the plan command's modules.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click

from provisioner import __version__
from provisioner.apply.interrupts import Terminated, terminate_like_interrupt
from provisioner.cli.lazy import ENV_PREFIX, Entry, LazyGroup, with_envvars
from provisioner.cli.output import (
    echo_error,
    guarded_streams,
    show_state_notices,
    start_api_trace,
)
from provisioner.errors import OUT_OF_FILES_HINT, ProvisionerError, is_out_of_files
from provisioner.exit_codes import EXIT_INTERRUPTED, EXIT_TERMINATED

_TRUE = ("1", "true", "yes", "on", "y", "t")

COMMANDS = {
    "validate": Entry("validate_cmd", "Validate the bot manifests of every app under PATH..."),
    "plan": Entry(
        "plan_cmd",
        "Show what `apply` would change for each APP (default: every app under --bots-dir).",
    ),
    "apply": Entry(
        "apply_cmd",
        "Apply the manifests of each APP (default: every app under --bots-dir; with --plan,"
        " the apps in the plan file).",
    ),
    "drift": Entry(
        "drift_cmd",
        "Refresh each APP (default: every app under --bots-dir) from the API and report what"
        " differs from git: bots changed or deleted on the server outside git (drift), bots on"
        " the server that nobody manages (unmanaged) and changes in git not applied yet"
        " (pending).",
    ),
    "state": Entry("state_cmd", "Inspect, free, move or edit the recorded state of apps."),
    "github": Entry(
        "github_cmd",
        "The GitOps loop on GitHub Actions: `plan` on pull requests, `apply` after merge,"
        " `drift` on a schedule.",
    ),
    "gitlab": Entry(
        "gitlab_cmd",
        "The GitOps loop on GitLab CI: `plan` on merge requests, `apply` after merge, `drift`"
        " on a schedule.",
    ),
    "check": Entry(
        "check_cmd",
        "Check the Dify integrations of each APP (default: every app under --bots-dir).",
    ),
    "converse": Entry(
        "converse_cmd",
        "Send TEXT to BOT (its userId) of APP as a user, through the app's endpoint.",
    ),
    "init": Entry("init_cmd", "Create bots/APP/ with app.yaml and one commented example bot."),
    "export": Entry("export_cmd", "Write one manifest per bot of each APP as the server holds it."),
    "schema": Entry(
        "schema_cmd",
        "Write the JSON Schemas (Draft 2020-12) of the manifests and the JSON outputs into --out.",
    ),
    "api": Entry(
        "api_cmd",
        "POST one signed request to PATH with APP's credentials; print the answer's JSON.",
    ),
    "probe": Entry(
        "probe_cmd",
        "Observe, with probe bots, what APP's server does where RongCloud's docs are silent.",
    ),
    "sign": Entry("sign_cmd", "Print fresh App-Key, Nonce, Timestamp and Signature headers."),
    "emulator": Entry(
        "emulator_cmd", "A local stand-in for RongCloud's bot API and messages, and for Dify."
    ),
}
"""Every command: the module under ``provisioner.cli`` that defines it as ``command``, and its
summary for ``provisioner --help`` (tests/test_cli.py holds each equal to the command's own)."""


@click.group(
    cls=LazyGroup,
    commands_dict=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="provisioner")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Append the API trace to FILE: one line per HTTP call (method, path, status, request"
    " id, duration, attempt), never a secret or a body. PROVISIONER_LOG=debug prints it on"
    " stderr.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, log_file: Path | None) -> None:
    """Declarative GitOps for RongCloud IM chat bots.

    Keep every bot of a RongCloud app as YAML under bots/<app>/, validate it against the API's
    limits, review a plan, and apply exactly that plan.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.call_on_close(start_api_trace(log_file))


with_envvars(cli, (ENV_PREFIX,))  # --debug: PROVISIONER_DEBUG


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises, except SystemExit from click)."""
    args = list(sys.argv[1:] if argv is None else argv)
    with guarded_streams():
        return _main(args)


def _main(args: list[str]) -> int:
    debug = "--debug" in args or os.environ.get(f"{ENV_PREFIX}_DEBUG", "") in _TRUE
    show_state_notices()
    with thread_errors(debug) as failed:
        code = _command(args, debug)
    if failed and code == 0:
        thread, error = failed[0]
        _echo_unexpected(error, f"thread {thread}")
        return 1
    return code


@contextmanager
def thread_errors(debug: bool) -> Iterator[list[tuple[str, BaseException]]]:
    """While a command runs, an exception no code caught in another thread (a library's
    background thread, a bug) is kept for the run's own error handling instead of printed:
    a command that otherwise succeeded fails with it (exit 1). --debug also prints its
    traceback."""
    failed: list[tuple[str, BaseException]] = []
    previous = threading.excepthook

    def keep(hooked: threading.ExceptHookArgs) -> None:
        if hooked.exc_value is None or isinstance(hooked.exc_value, SystemExit):
            return
        name = hooked.thread.name if hooked.thread is not None else "unknown"
        failed.append((name, hooked.exc_value))
        if debug:
            previous(hooked)

    threading.excepthook = keep
    try:
        yield failed
    finally:
        threading.excepthook = previous


def _command(args: list[str], debug: bool) -> int:
    try:
        with terminate_like_interrupt():
            result = cli.main(args=args, prog_name="provisioner", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            return _interrupted(exc.__cause__)
        echo_error("aborted")
        return 1
    except click.ClickException as exc:
        exc.show()
        return 1  # never click's 2 for a usage error: 2 means "changes present"
    except ProvisionerError as exc:
        if debug:
            traceback.print_exc()
        echo_error(exc.message, hint=exc.hint)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _echo_unexpected(exc)
        return 1
    return result if isinstance(result, int) else 0


def _echo_unexpected(exc: BaseException, where: str = "") -> None:
    """An exception no code translated: out of file descriptors, or a bug."""
    place = f" in {where}" if where else ""
    if is_out_of_files(exc):
        echo_error(f"too many open files{place} ({exc})", hint=OUT_OF_FILES_HINT)
        return
    echo_error(
        f"internal error{place} ({type(exc).__name__})",
        hint="this is a bug in provisioner; re-run with --debug for the traceback",
    )


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    terminated = isinstance(interrupt, Terminated)
    echo_error("terminated" if terminated else "interrupted")
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def run() -> None:
    raise SystemExit(main())
