"""`provisioner init` and `provisioner schema`: new app folders whose modelines resolve, the
published schemas, and bad input (an existing app, a bad endpoint or variable name)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.export.scaffold import SCHEMA_NAMES, packaged_schema

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def modeline_target(path: Path) -> Path:
    first, second = path.read_text("utf-8").splitlines()[:2]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    assert second == f"# $schema: {first.removeprefix(prefix)}"
    return (path.parent / first.removeprefix(prefix)).resolve()


def test_init_creates_a_valid_app_whose_modelines_resolve(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "demo"]) == 0
    assert capsys.readouterr().out == (
        "written schemas/bot.schema.json\n"
        "written schemas/app.schema.json\n"
        "written schemas/app-bundle.schema.json\n"
        "written bots/demo/app.yaml\n"
        "written bots/demo/example-bot.yaml\n"
        "written .gitignore\n"
        "Next: provisioner validate bots/demo && provisioner plan demo\n"
    )
    assert (workdir / ".gitignore").read_text("utf-8") == (
        "# provisioner's local files (state, locks, emulator)\n.provisioner/\n"
    )
    assert modeline_target(workdir / "bots/demo/app.yaml") == workdir / "schemas/app.schema.json"
    bot = workdir / "bots/demo/example-bot.yaml"
    assert modeline_target(bot) == workdir / "schemas/bot.schema.json"
    assert main(["validate", "--strict"]) == 0
    assert main(["plan", "demo", "--detailed-exitcode"]) == 2
    assert "+ create example-bot (bots/demo/example-bot.yaml)" in capsys.readouterr().out


def test_init_with_a_data_center_references_derived_credentials(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "prod-cn", "--endpoint", "cn", "--bots-dir", "config/bots"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        "Next: provisioner validate config/bots/prod-cn && provisioner plan prod-cn\n"
        "      (export RONGCLOUD_PROD_CN_APP_KEY=... RONGCLOUD_PROD_CN_APP_SECRET=... first)\n"
    )
    app_yaml = workdir / "config/bots/prod-cn/app.yaml"
    assert app_yaml.read_text("utf-8").splitlines()[-3:] == [
        "endpoint: cn",
        "appKey: ${RONGCLOUD_PROD_CN_APP_KEY}",
        "appSecret: ${RONGCLOUD_PROD_CN_APP_SECRET}",
    ]
    assert modeline_target(app_yaml) == workdir / "schemas/app.schema.json"
    assert main(["validate", "config/bots"]) == 0


def test_init_takes_variable_names_and_an_endpoint_reference(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["init", "x", "--endpoint", "${X_ENDPOINT}", "--app-key-var", "K", "--app-secret-var"]
    assert main([*args, "S"]) == 0
    lines = (workdir / "bots/x/app.yaml").read_text("utf-8").splitlines()
    assert lines[-3:] == ["endpoint: ${X_ENDPOINT}", "appKey: ${K}", "appSecret: ${S}"]


def test_init_writes_the_state_block_of_the_backend_asked_for(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "prod-cn", "--endpoint", "cn", "--state", "postgres"]) == 0
    assert capsys.readouterr().out.endswith(
        "      (export RONGCLOUD_PROD_CN_APP_KEY=... RONGCLOUD_PROD_CN_APP_SECRET=..."
        " PROVISIONER_PROD_CN_STATE_DSN=... first)\n"
    )
    lines = (workdir / "bots/prod-cn/app.yaml").read_text("utf-8").splitlines()
    assert lines[-5:] == [
        "state:",
        "  backend: postgres",
        "  dsn: ${PROVISIONER_PROD_CN_STATE_DSN}",
        "  readDsn: ${PROVISIONER_PROD_CN_STATE_READ_DSN}",
        "  schema: provisioner",
    ]
    assert main(["init", "lab", "--state", "gitlab"]) == 0
    assert (workdir / "bots/lab/app.yaml").read_text("utf-8").splitlines()[-3:] == [
        "# The recorded state: the GitLab-managed Terraform state lab of this project;",
        "# in GitLab CI nothing else is needed (docs/state.md).",
        "state: {backend: gitlab}",
    ]
    assert main(["init", "team", "--state", "git"]) == 0
    assert (workdir / "bots/team/app.yaml").read_text("utf-8").splitlines()[-3:] == [
        "# The recorded state: team.json on the branch provisioner-state of this",
        "# repository, shared by every clone and CI job (docs/state.md).",
        "state: {backend: git, branch: provisioner-state, remote: origin}",
    ]
    assert main(["init", "solo", "--state", "file"]) == 0
    assert (workdir / "bots/solo/app.yaml").read_text("utf-8").splitlines()[-2:] == [
        "# The recorded state: the JSON file .provisioner/state/solo.json (docs/state.md).",
        "state: {backend: file}",
    ]
    assert main(["validate", "--strict"]) == 0
    capsys.readouterr()
    assert main(["state", "show", "solo"]) == 0
    assert capsys.readouterr().out == (
        "App solo: no recorded state (.provisioner/state/solo.json does not exist)\n"
    )
    assert main(["init", "other", "--state", "s3"]) == 1
    assert "'s3' is not one of 'file', 'git', 'postgres'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["init", "demo"],
            "bots/demo already holds manifests",
            "init only starts a new app folder; edit the files there, or choose another app name",
        ),
        (
            ["init", "new", "--endpoint", "http://example.com"],
            "--endpoint 'http://example.com' is not an endpoint",
            "give local, a data center (cn, sg, sg-b, na, sa/sau), an https:// base URL"
            " (http:// only for 127.0.0.1/localhost), or ${NAME} to read it from the environment",
        ),
        (
            ["init", "new", "--endpoint", "cn", "--app-key-var", "${KEY}"],
            "--app-key-var '${KEY}' is not an environment variable name",
            "use letters, digits and underscores, not starting with a digit (no ${...})",
        ),
        (
            ["init", "../outside"],
            "app name '../outside' is not a folder name",
            "give the app's name (e.g. staging); it becomes the folder --bots-dir/NAME",
        ),
    ],
)
def test_init_refuses_bad_input(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str, hint: str
) -> None:
    assert main(["init", "demo"]) == 0
    capsys.readouterr()
    assert main(args) == 1
    assert capsys.readouterr() == ("", f"error: {message}\n  hint: {hint}\n")
    assert not (workdir / "bots" / "new").exists()


def test_init_keeps_schemas_it_finds(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "schemas").mkdir()
    (workdir / "schemas/bot.schema.json").write_text("{}", "utf-8")
    assert main(["init", "demo"]) == 0
    assert capsys.readouterr().out.startswith(
        "kept schemas/bot.schema.json\nwritten schemas/app.schema.json\n"
    )
    assert (workdir / "schemas/bot.schema.json").read_text("utf-8") == "{}"


def test_schema_writes_the_published_schemas(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "out").mkdir()
    (workdir / "out/bot.schema.json").write_text("{}", "utf-8")
    assert main(["schema", "--out", "out"]) == 0
    assert capsys.readouterr().out == (
        "written out/bot.schema.json\n"
        "written out/app.schema.json\n"
        "written out/app-bundle.schema.json\n"
        "written out/plan.schema.json\n"
        "written out/drift.schema.json\n"
        "written out/check.schema.json\n"
    )
    for name in SCHEMA_NAMES:
        text = (workdir / "out" / f"{name}.schema.json").read_text("utf-8")
        assert text == (REPO / "schemas" / f"{name}.schema.json").read_text("utf-8")
        assert json.loads(text)["$id"].endswith(f"/{name}.schema.json")
    assert main(["schema", "--out", "out"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "unchanged out/bot.schema.json"


def test_schema_into_a_file_is_a_clean_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "file").write_text("x", "utf-8")
    assert main(["schema", "--out", "file/sub"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: cannot write the schemas to file/sub: ")
    assert err.endswith("\n  hint: choose a writable folder with --out / --schemas-dir\n")


def test_the_packaged_schemas_are_the_published_ones() -> None:
    for name in SCHEMA_NAMES:
        assert packaged_schema(name) == (REPO / "schemas" / f"{name}.schema.json").read_text(
            "utf-8"
        )


def test_init_appends_to_a_gitignore_and_never_rewrites_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / ".gitignore").write_text("node_modules/\n*.log", encoding="utf-8")
    assert main(["init", "staging"]) == 0
    assert "updated .gitignore\n" in capsys.readouterr().out
    assert main(["init", "production"]) == 0
    assert ".gitignore" not in capsys.readouterr().out  # unchanged: already ignored
    assert (workdir / ".gitignore").read_text("utf-8") == (
        "node_modules/\n*.log\n# provisioner's local files (state, locks, emulator)\n"
        ".provisioner/\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    (workdir / ".provisioner").mkdir(exist_ok=True)
    (workdir / ".provisioner/x.json").write_text("{}", encoding="utf-8")
    ignored = subprocess.run(
        ["git", "check-ignore", ".provisioner/x.json"],
        cwd=workdir,
        capture_output=True,
        check=False,
    )
    assert ignored.returncode == 0
