"""The secrets bundle (``PROVISIONER_SECRETS``): the dotenv subset it accepts, every error
(naming the line, never a value), and which of the bundle and the environment wins."""

from __future__ import annotations

import pytest

from provisioner.errors import ConfigError
from provisioner.secrets.bundle import merge_bundle, parse_bundle

CANARY = "CANARY-bundle-value-4d2e"

BUNDLE = f"""# the production secrets
RONGCLOUD_DEMO_APP_KEY=demo-key
export RONGCLOUD_DEMO_APP_SECRET = {CANARY}

DIFY_DEMO_ASSISTANT_KEY=app-$HOME-${{NOT_EXPANDED}}\\n'"
  SINGLE='a # not a comment'  # a comment
DOUBLE="tab\\there \\"quoted\\" back\\\\slash" # a comment
PEM="-----BEGIN KEY-----
line two
-----END KEY-----"
LITERAL='first
second \\n'
EMPTY=
CRLF=ends-with-cr\r
"""


def test_the_bundle_reads_the_documented_dotenv_subset() -> None:
    assert parse_bundle(BUNDLE) == {
        "RONGCLOUD_DEMO_APP_KEY": "demo-key",
        "RONGCLOUD_DEMO_APP_SECRET": CANARY,
        "DIFY_DEMO_ASSISTANT_KEY": "app-$HOME-${NOT_EXPANDED}\\n'\"",
        "SINGLE": "a # not a comment",
        "DOUBLE": 'tab\there "quoted" back\\slash',
        "PEM": "-----BEGIN KEY-----\nline two\n-----END KEY-----",
        "LITERAL": "first\nsecond \\n",
        "EMPTY": "",
        "CRLF": "ends-with-cr",
    }


def test_single_quotes_end_at_the_next_quote() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bundle("SINGLE='it''s # not a comment' x")
    assert caught.value.message == (
        "PROVISIONER_SECRETS, line 1: SINGLE: unexpected text after the closing quote"
    )


def test_a_quote_in_single_quotes_is_written_as_the_shell_writes_it() -> None:
    text = "A='it'\\''s $HOME'\nB=''\\'''\nC='two\nlines '\\''q'\\'''  # note\n"
    assert parse_bundle(text) == {"A": "it's $HOME", "B": "'", "C": "two\nlines 'q'"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"A=1\n{CANARY}\n", "line 2: expected NAME=value"),
        (
            f"A=1\n\n 9{CANARY}=x\n",
            "line 3: the text before `=` is not a variable name (letters, digits and"
            " underscores, not starting with a digit)",
        ),
        (f"KEY=1\n# c\nKEY={CANARY}\n", "line 3: KEY is set twice (first on line 1)"),
        (f'A=1\nKEY="{CANARY}\nmore\n', "line 2: KEY: the quoted value is not closed"),
        (f"KEY='{CANARY}", "line 1: KEY: the quoted value is not closed"),
        (f'KEY="{CANARY}" {CANARY}', "line 1: KEY: unexpected text after the closing quote"),
        (
            f'KEY="{CANARY}\nline\\q"',
            'line 2: KEY: a backslash that is not one of the escapes \\\\ \\" \\n \\r \\t'
            " (use single quotes for a literal value)",
        ),
        (
            f"KEY={CANARY} # note",
            "line 1: KEY: an unquoted value with `#` at its start or after a space (other"
            " readers cut a comment there): quote the value",
        ),
        (
            f"KEY=#{CANARY}",
            "line 1: KEY: an unquoted value with `#` at its start or after a space (other"
            " readers cut a comment there): quote the value",
        ),
        (
            f"GITHUB_TOKEN={CANARY}",
            "line 1: GITHUB_TOKEN is not for the bundle: the runner sets GITHUB_*, RUNNER_*"
            " and ACTIONS_*, and PROVISIONER_SECRETS is the bundle itself",
        ),
        (
            f"PROVISIONER_SECRETS={CANARY}",
            "line 1: PROVISIONER_SECRETS is not for the bundle: the runner sets GITHUB_*,"
            " RUNNER_* and ACTIONS_*, and PROVISIONER_SECRETS is the bundle itself",
        ),
        (f"A=1\nKEY={CANARY}\x00\n", "line 2: holds a NUL character"),
        (f"KEY='{CANARY}\n\x00'", "line 2: holds a NUL character"),
    ],
)
def test_a_malformed_bundle_names_the_line_never_a_value(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bundle(text)
    assert caught.value.message == f"PROVISIONER_SECRETS, {message}"
    assert caught.value.hint == (
        'the bundle holds one NAME=value per line (docs/github.md, "One secret for every'
        ' variable"); provisioner never prints its text'
    )
    assert CANARY not in caught.value.message


def test_the_environment_wins_over_the_bundle_and_the_bundle_fills_in() -> None:
    env = {"SET": "from-env", "SAME": "same", "EMPTY": "", "OTHER": "kept"}
    bundle = {"SET": "from-bundle", "SAME": "same", "EMPTY": "filled", "NEW": "new", "NONE": ""}
    merged = merge_bundle(env, bundle)
    assert merged.env == {
        "SET": "from-env",
        "SAME": "same",
        "EMPTY": "filled",
        "OTHER": "kept",
        "NEW": "new",
    }
    assert merged.shadowed == ("SET",)
    assert env["EMPTY"] == ""  # the input is left alone
