"""The shipped GitHub files, linted offline with the tools from the dev lock: actionlint,
zizmor, check-jsonschema (GitHub's workflow, action and dependabot schemas, and the
require-timeout rule), pre-commit (the hook manifest, and ``try-repo`` on a good and a bad
app folder); plus the rules of docs/github.md that no linter checks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((REPO / "examples" / "github").glob("*.yml"))
ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def run(*args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def tool(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{name} is missing from the venv: install requirements/dev.lock"
    return path


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_files_exist() -> None:
    names = [path.name for path in EXAMPLES]
    assert names == ["apply.yml", "dispatch.yml", "drift.yml", "plan.yml"]
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml", "self-test.yml"}


def test_actionlint() -> None:
    # -shellcheck= : results must not depend on whether shellcheck is installed here
    run(tool("actionlint"), "-shellcheck=", *WORKFLOWS, *EXAMPLES)


def test_zizmor_offline() -> None:
    output = run(tool("zizmor"), "--offline", *WORKFLOWS, *EXAMPLES, ACTION)
    assert "No findings to report" in output
    for path in (*WORKFLOWS, *EXAMPLES, ACTION):
        assert f"completed {path}" in output


def test_ci_lints_the_example_workflows_with_zizmor() -> None:
    # zizmor collects nothing from a folder without .github/workflows: name the files
    steps = steps_of(load(REPO / ".github" / "workflows" / "ci.yml"))
    [command] = [step["run"] for step in steps if "zizmor" in step.get("run", "")]
    assert " examples/github/*.yml " in command


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", [*WORKFLOWS, *EXAMPLES]),
        ("custom.github-workflows-require-timeout", [*WORKFLOWS, *EXAMPLES]),
        ("vendor.github-actions", [ACTION]),
        ("vendor.dependabot", [REPO / ".github" / "dependabot.yml"]),
    ],
)
def test_check_jsonschema(schema: str, files: list[Path]) -> None:
    output = run(tool("check-jsonschema"), "--builtin-schema", schema, *files)
    assert "ok -- validation done" in output


def test_hook_manifest_is_valid() -> None:
    run(tool("pre-commit"), "validate-manifest", HOOKS)
    [hook] = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "provisioner-validate"
    assert hook["entry"] == "provisioner validate --expand-files"
    assert hook["language"] == "python"  # pre-commit pip-installs this repository
    assert hook["require_serial"] is True


# --- rules no linter checks ---------------------------------------------------------------


def steps_of(data: dict[Any, Any]) -> list[dict[str, Any]]:
    if "runs" in data:
        return list(data["runs"]["steps"])
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("path", [*WORKFLOWS, *EXAMPLES, ACTION], ids=lambda path: path.name)
def test_pins_checkouts_and_scripts(path: Path) -> None:
    data = load(path)
    for step in steps_of(data):
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert PINNED.match(uses), f"{path.name}: {uses} is not pinned to a full SHA"
        if uses and uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        assert "${{" not in step.get("run", ""), f"{path.name}: expression inside a script"
    text = path.read_text()
    for line in text.splitlines():
        if "uses:" in line and "@" in line and "./" not in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), f"{path.name}: version comment: {line}"


@pytest.mark.parametrize("path", [*WORKFLOWS, *EXAMPLES], ids=lambda path: path.name)
def test_least_privilege_and_timeouts(path: Path) -> None:
    data = load(path)
    assert data["permissions"] == {}
    for name, job in data["jobs"].items():
        assert isinstance(job["timeout-minutes"], int), f"{path.name}: {name}"
        assert "permissions" in job, f"{path.name}: {name} must state its permissions"


@pytest.mark.parametrize("name", ["apply.yml", "drift.yml", "dispatch.yml"])
def test_apply_and_drift_share_a_queue_that_never_cancels(name: str) -> None:
    data = load(REPO / "examples" / "github" / name)
    assert data["concurrency"] == {
        "group": "provisioner-bots",
        "cancel-in-progress": False,
        "queue": "max",
    }


def test_apply_runs_in_an_environment_with_reviewers() -> None:
    job = load(REPO / "examples" / "github" / "apply.yml")["jobs"]["apply"]
    assert job["environment"] == "production"
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    plan = load(REPO / "examples" / "github" / "plan.yml")["jobs"]["plan"]
    assert "environment" not in plan
    # a plan job holds nothing but the read-only DSNs of a postgres state, if any
    assert re.findall(r"secrets\.\w+", str(plan)) == ["secrets.PROVISIONER_PLAN_SECRETS"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_the_examples_copy_verbatim_for_any_set_of_apps(path: Path) -> None:
    """No workflow names a variable of the manifests: every secret reaches provisioner in one
    bundle (the Action's ``secrets`` input), so a new app or bot needs no workflow edit."""
    data = load(path)
    [step] = [step for step in steps_of(data) if "rongcloud-bot-provisioner/" in step["uses"]]
    assert "env" not in step
    wanted = "PROVISIONER_PLAN_SECRETS" if path.name == "plan.yml" else "PROVISIONER_SECRETS"
    assert step["with"]["secrets"] == f"${{{{ secrets.{wanted} }}}}"
    text = path.read_text(encoding="utf-8")
    assert set(re.findall(r"secrets\.(\w+)", text)) == {wanted}
    assert not re.search(r"RONGCLOUD_|DIFY_|_APP_KEY|_APP_SECRET|_STATE_DSN", text)
    for job in data["jobs"].values():
        assert "env" not in job


def test_the_action_passes_the_bundle_through_the_environment_only() -> None:
    action = load(ACTION)
    assert action["inputs"]["secrets"]["default"] == ""
    run = step_named(action, "provisioner github")
    assert run["env"]["PROVISIONER_SECRETS"] == ("${{ inputs.secrets || env.PROVISIONER_SECRETS }}")
    assert "PROVISIONER_SECRETS" not in run["run"] and "inputs.secrets" not in run["run"]
    for step in action["runs"]["steps"]:
        if step is not run:
            assert "secrets" not in str(step.get("env", {})), step.get("name")


def test_action_inputs_outputs_and_install() -> None:
    action = load(ACTION)
    assert set(action["inputs"]) == {
        "command",
        "apps",
        "working-directory",
        "python-version",
        "github-token",
        "args",
        "extras",
        "secrets",
        "lang",
        "labels",
    }
    assert action["inputs"]["extras"]["default"] == ""
    assert set(action["outputs"]) == {"changes", "blocked", "plan-ids", "exit-code"}
    assert action["runs"]["using"] == "composite"
    install = step_named(action, "Install provisioner")["run"]
    installer = '"$UV" pip install --python "$venv/bin/python" --quiet'
    assert f'{installer} --require-hashes -r "$LOCK"' in install
    assert f'{installer} --no-deps --no-build-isolation "$ACTION_PATH"' in install
    [cache] = [
        step
        for step in action["runs"]["steps"]
        if step.get("uses", "").startswith("actions/cache@")
    ]
    assert cache["with"]["path"] == "${{ steps.lock.outputs.cache-dir }}"
    assert "${{ steps.lock.outputs.hash }}" in cache["with"]["key"]
    assert cache["with"]["key"].startswith("provisioner-uv-")


def test_the_action_passes_lang_and_labels_and_plan_keeps_its_json() -> None:
    run = step_named(load(ACTION), "provisioner github")
    assert run["env"]["PROVISIONER_LANG"] == "${{ inputs.lang || env.PROVISIONER_LANG }}"
    assert run["env"]["PROVISIONER_PR_LABELS"] == "${{ inputs.labels }}"
    plan = load(REPO / "examples" / "github" / "plan.yml")["jobs"]["plan"]
    [action] = [s for s in plan["steps"] if "rongcloud-bot-provisioner/" in s.get("uses", "")]
    assert action["with"]["args"] == "--out provisioner-plan.json"
    upload_prefix = "actions/upload-artifact@"
    [upload] = [s for s in plan["steps"] if s.get("uses", "").startswith(upload_prefix)]
    assert upload["with"]["path"] == "provisioner-plan.json"
    assert upload["with"]["if-no-files-found"] == "ignore"


def step_named(action: dict[Any, Any], prefix: str) -> dict[str, Any]:
    [step] = [step for step in action["runs"]["steps"] if step.get("name", "").startswith(prefix)]
    return step


FAKE_UV = "#!/bin/sh\necho /cache/uv\n"
FAKE_PYTHON = """#!/bin/sh
# `python -m venv DIR` makes DIR/bin; `python -m pip --python DIR/bin/python install ... -r LOCK`
# records its arguments and "installs" uv there (no network in the tests)
case "$2" in
  venv) mkdir -p "$4/bin" ;;
  pip) echo "$@" > "$(dirname "$4")/pip-args"
       printf '#!/bin/sh\\necho /cache/bootstrapped\\n' > "$(dirname "$4")/uv"
       chmod +x "$(dirname "$4")/uv" ;;
esac
"""


def choose_lock(tmp_path: Path, extras: str, *, uv: bool) -> dict[str, str]:
    """Run the Action's "Choose the lock" script as the runner would; its outputs. Without
    ``uv`` on PATH the script pip-installs it from requirements/uv.lock (faked here)."""
    script = step_named(load(ACTION), "Choose the lock")["run"]
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    fake_uv = tools / "uv"
    if uv:
        fake_uv.write_text(FAKE_UV)
        fake_uv.chmod(0o755)
    else:
        fake_uv.unlink(missing_ok=True)
    (tools / "python").unlink(missing_ok=True)
    (tools / "python").write_text(FAKE_PYTHON)
    (tools / "python").chmod(0o755)
    output = tmp_path / "output"
    output.write_text("")
    env = {
        "PATH": f"{tools}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ACTION_PATH": str(REPO),
        "EXTRAS": extras,
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(tmp_path / "temp"),
    }
    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def test_the_action_installs_core_unless_extras_are_asked(tmp_path: Path) -> None:
    core = choose_lock(tmp_path, "", uv=False)
    assert core["file"] == f"{REPO}/requirements/core.lock"
    bootstrapped = tmp_path / "temp" / "provisioner-uv" / "bin"
    assert core["uv"] == f"{bootstrapped}/uv" and core["cache-dir"] == "/cache/bootstrapped"
    pip_args = (bootstrapped / "pip-args").read_text().split()
    assert pip_args[pip_args.index("-r") + 1] == f"{REPO}/requirements/uv.lock"
    assert "--require-hashes" in pip_args
    for extras in ("postgres", "emulator, tty", "all"):
        assert choose_lock(tmp_path, extras, uv=False)["file"] == f"{REPO}/requirements/main.lock"
    with_uv = choose_lock(tmp_path, "", uv=True)
    assert with_uv["uv"] == f"{tmp_path}/bin/uv" and with_uv["cache-dir"] == "/cache/uv"
    assert with_uv["hash"] == core["hash"] != choose_lock(tmp_path, "all", uv=True)["hash"]


def test_the_action_refuses_an_unknown_extra(tmp_path: Path) -> None:
    script = step_named(load(ACTION), "Choose the lock")["run"]
    env = {"PATH": "/usr/bin:/bin", "ACTION_PATH": str(REPO), "EXTRAS": "postgres,rich"}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == (
        "::error title=provisioner::unknown extra 'rich': use postgres, emulator, tty or all\n"
    )


# --- pre-commit try-repo ------------------------------------------------------------------

GOOD_BOT = """userId: helper-bot
name: Helper
type: Message AI
profileUrl: https://example.com/robot.png
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
"""
BAD_BOT = """userId: broken-bot
name: no
type: Message AI
profileUrl: https://example.com/robot.png
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
"""


def hook_repo(tmp_path: Path) -> Path:
    """A copy of the hook manifest as a git repository, the hook run from this venv.

    try-repo with ``language: python`` would pip-install this repository and its
    dependencies into a fresh environment, which needs the package index: tests run
    offline. So the copy says ``language: unsupported`` (pre-commit's name for a command
    already installed) and calls this venv's ``provisioner``; every other key (files,
    types, require_serial, pass_filenames) is the shipped hook's own.
    """
    repo = tmp_path / "hooks"
    repo.mkdir()
    [hook] = yaml.safe_load(HOOKS.read_text())
    hook["language"] = "unsupported"
    hook["entry"] = hook["entry"].replace("provisioner", str(BIN / "provisioner"), 1)
    (repo / ".pre-commit-hooks.yaml").write_text(yaml.safe_dump([hook]))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "hooks")
    return repo


def git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=cwd, check=True, env=env, capture_output=True)


def user_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "user"
    for app, bot in (("good", GOOD_BOT), ("bad", BAD_BOT)):
        folder = repo / "bots" / app
        folder.mkdir(parents=True)
        (folder / "app.yaml").write_text("endpoint: local\n")
        (folder / "bot.yaml").write_text(bot)
    (repo / "README.md").write_text("not a manifest\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    return repo


def try_repo(hooks: Path, user: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        [
            str(tool("pre-commit")),
            "try-repo",
            str(hooks),
            "provisioner-validate",
            "--files",
            *files,
        ],
        cwd=user,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_try_repo_on_a_good_and_a_bad_app(tmp_path: Path) -> None:
    hooks, user, home = hook_repo(tmp_path), user_repo(tmp_path), tmp_path / "home"
    good = try_repo(hooks, user, home, "bots/good/bot.yaml", "bots/good/app.yaml", "README.md")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "provisioner validate" in good.stdout and "Passed" in good.stdout
    bad = try_repo(hooks, user, home, "bots/bad/bot.yaml", "bots/good/bot.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert (
        "bots/bad/bot.yaml:2:7: error: name: expected a string, got the boolean false "
        "(written `no`)" in bad.stdout
    )
    assert "bots/good: 1 bot valid" in bad.stdout
