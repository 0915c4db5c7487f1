"""Command line: the only layer that prints. ``main(argv) -> int``; ``run()`` is the script.

Exit codes: 0 success / no changes, 1 error (usage errors too: 2 means "changes present"),
2 changes present (``plan --detailed-exitcode``), 3 blocked by a safety rule, 4 partial apply,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM, handled like Ctrl-C).

Each command lives in its own module and keeps heavy imports inside its function body, so
``provisioner --version`` stays fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click

from provisioner import __version__
from provisioner.apply.interrupts import Terminated, terminate_like_interrupt
from provisioner.cli import (
    api_cmd,
    apply_cmd,
    check_cmd,
    converse_cmd,
    drift_cmd,
    emulator_cmd,
    export_cmd,
    github_cmd,
    init_cmd,
    plan_cmd,
    schema_cmd,
    sign_cmd,
    state_cmd,
    validate_cmd,
)
from provisioner.cli.output import echo_error, guarded_streams, show_state_notices
from provisioner.errors import ProvisionerError
from provisioner.exit_codes import EXIT_INTERRUPTED, EXIT_TERMINATED


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provisioner")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative GitOps for RongCloud IM chat bots.

    Keep every bot of a RongCloud app as YAML under bots/<app>/, validate it against the API's
    limits, review a plan, and apply exactly that plan.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


COMMANDS = (
    validate_cmd,
    plan_cmd,
    apply_cmd,
    drift_cmd,
    state_cmd,
    github_cmd,
    check_cmd,
    converse_cmd,
    init_cmd,
    export_cmd,
    schema_cmd,
    api_cmd,
    sign_cmd,
    emulator_cmd,
)
"""Every command module (`provisioner --help` lists them by name)."""

for _module in COMMANDS:
    cli.add_command(_module.command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises, except SystemExit from click)."""
    args = list(sys.argv[1:] if argv is None else argv)
    with guarded_streams():
        return _main(args)


def _main(args: list[str]) -> int:
    debug = "--debug" in args
    show_state_notices()
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
        echo_error(
            f"internal error ({type(exc).__name__})",
            hint="this is a bug in provisioner; re-run with --debug for the traceback",
        )
        return 1
    return result if isinstance(result, int) else 0


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    terminated = isinstance(interrupt, Terminated)
    echo_error("terminated" if terminated else "interrupted")
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def run() -> None:
    raise SystemExit(main())
