"""New app folders and the published schemas: what ``init``, ``export`` and ``schema`` write.

- :func:`write_schemas` copies the JSON Schemas shipped inside the package
  (``provisioner/schemas/``) into a folder of the user's repository;
- :func:`modelines` are the first lines of a manifest that point editors at them, as a path
  relative to the manifest (VS Code and other yaml-language-server editors read
  ``# yaml-language-server: $schema=…``, JetBrains IDEs ``# $schema: …``);
- :func:`app_yaml_text` and :func:`example_bot_text` are the files ``init`` creates, with
  the ``state`` block of the backend asked for (:func:`state_yaml_lines`);
- :func:`env_name` derives environment variable names (``RONGCLOUD_STAGING_APP_KEY``,
  ``PROVISIONER_STAGING_STATE_DSN``).

Files are only written by :func:`write_schemas` and :func:`init_app`; the texts are pure.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from provisioner.errors import ConfigError
from provisioner.models import LOCAL_ENDPOINT, is_endpoint
from provisioner.secrets import REFERENCE

SCHEMA_NAMES = ("bot", "app", "app-bundle")
"""The manifests' schemas (``init`` writes them too)."""
OUTPUT_SCHEMA_NAMES = ("plan", "drift", "check")
"""The schemas of the JSON outputs (:mod:`provisioner.export.documents`)."""
DEFAULT_SCHEMAS_DIR = Path("schemas")
EXAMPLE_USER_ID = "example-bot"
_NOT_NAME = re.compile(r"[^A-Z0-9]+")
_REFERENCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name(*parts: str) -> str:
    """An environment variable name from ``parts``: upper case, every run of other characters
    an underscore, empty parts dropped (``("RONGCLOUD", "staging-cn", "APP_KEY")`` ->
    ``RONGCLOUD_STAGING_CN_APP_KEY``)."""
    words = [_NOT_NAME.sub("_", part.upper()).strip("_") for part in parts]
    return "_".join(word for word in words if word)


def credential_names(app: str) -> tuple[str, str]:
    """The default variables of an app's ``appKey`` and ``appSecret``."""
    return env_name("RONGCLOUD", app, "APP_KEY"), env_name("RONGCLOUD", app, "APP_SECRET")


def state_dsn_names(app: str) -> tuple[str, str]:
    """The variables of a postgres state's ``dsn`` and ``readDsn``."""
    return env_name("PROVISIONER", app, "STATE_DSN"), env_name("PROVISIONER", app, "STATE_READ_DSN")


def check_variable_name(option: str, name: str) -> str:
    """``name`` when it can be a ``${NAME}`` reference; ConfigError naming ``option``."""
    if not _REFERENCE_NAME.match(name):
        raise ConfigError(
            f"{option} {name!r} is not an environment variable name",
            hint="use letters, digits and underscores, not starting with a digit (no ${...})",
        )
    return name


# --- schemas ---------------------------------------------------------------------------------


def packaged_schema(name: str) -> str:
    """The text of ``<name>.schema.json`` as shipped in the package."""
    return (resources.files("provisioner") / "schemas" / f"{name}.schema.json").read_text("utf-8")


@dataclass(frozen=True)
class WrittenFile:
    """One file a command wrote or left alone: ``status`` is ``written``, ``updated``
    (appended to), ``unchanged`` or ``kept`` (it existed with other content and was not
    overwritten)."""

    path: Path
    status: str


def write_schemas(
    folder: Path, *, overwrite: bool, names: Sequence[str] = SCHEMA_NAMES
) -> list[WrittenFile]:
    """Write the published schemas ``names`` (the manifests' by default) into ``folder``
    (created when missing). Files already holding the same text are left as they are;
    others are replaced only with ``overwrite``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return [_write_schema(folder, name, overwrite) for name in names]
    except OSError as exc:
        raise ConfigError(
            f"cannot write the schemas to {folder}: {exc.strerror or exc}",
            hint="choose a writable folder with --out / --schemas-dir",
        ) from exc


def _write_schema(folder: Path, name: str, overwrite: bool) -> WrittenFile:
    path = folder / f"{name}.schema.json"
    text = packaged_schema(name)
    if path.is_file():
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return WrittenFile(path, "unchanged")
        if not overwrite:
            return WrittenFile(path, "kept")
    path.write_text(text, encoding="utf-8")
    return WrittenFile(path, "written")


def modelines(manifest_folder: Path, schemas_dir: Path, kind: str) -> str:
    """The schema modelines for a manifest of ``kind`` (``bot`` or ``app``) in
    ``manifest_folder``: a path relative to the folder, so it works in any checkout."""
    relative = os.path.relpath(schemas_dir.absolute(), manifest_folder.absolute())
    target = Path(relative, f"{kind}.schema.json").as_posix()
    return f"# yaml-language-server: $schema={target}\n# $schema: {target}\n"


# --- init ------------------------------------------------------------------------------------


def app_yaml_text(
    endpoint: str, key_var: str, secret_var: str, header: str, state: list[str] | None = None
) -> str:
    """``app.yaml`` for ``endpoint``: credentials as references unless it is ``local``; then
    the ``state`` lines (:func:`state_yaml_lines`) when given."""
    lines = [header.rstrip("\n")]
    if endpoint == LOCAL_ENDPOINT:
        lines += [
            "# endpoint: local runs the embedded RongCloud emulator (no account needed).",
            "# For a real app: a data center (cn, sg, sg-b, na, sa) or an https:// base URL,",
            f"# with appKey: ${{{key_var}}} and appSecret: ${{{secret_var}}}.",
            "endpoint: local",
        ]
    else:
        lines += [
            "# The App Key and App Secret come from the environment (the RongCloud console's",
            "# App Key page); the secret is always a reference, never written here.",
            f"endpoint: {_yaml_scalar(endpoint)}",
            f"appKey: ${{{key_var}}}",
            f"appSecret: ${{{secret_var}}}",
        ]
    return "\n".join([*lines, *(state or ())]) + "\n"


STATE_BACKENDS = ("file", "git", "postgres", "gitlab")


def state_yaml_lines(app: str, backend: str) -> list[str]:
    """app.yaml's ``state`` block for ``backend`` (one of :data:`STATE_BACKENDS`), with a
    comment saying where the state lives; postgres references per-app DSN variables."""
    if backend == "file":
        return [
            f"# The recorded state: the JSON file .provisioner/state/{app}.json (docs/state.md).",
            "state: {backend: file}",
        ]
    if backend == "git":
        return [
            f"# The recorded state: {app}.json on the branch provisioner-state of this",
            "# repository, shared by every clone and CI job (docs/state.md).",
            "state: {backend: git, branch: provisioner-state, remote: origin}",
        ]
    if backend == "gitlab":
        return [
            f"# The recorded state: the GitLab-managed Terraform state {app} of this project;",
            "# in GitLab CI nothing else is needed (docs/state.md).",
            "state: {backend: gitlab}",
        ]
    dsn, read_dsn = state_dsn_names(app)
    return [
        "# The recorded state: a PostgreSQL schema (install the postgres extra). dsn may",
        "# write (apply); readDsn, a read-only role, serves plan jobs (docs/state.md).",
        "state:",
        "  backend: postgres",
        f"  dsn: ${{{dsn}}}",
        f"  readDsn: ${{{read_dsn}}}",
        "  schema: provisioner",
    ]


def example_bot_text(header: str, dify_var: str) -> str:
    """A commented example bot: a webhook integration, and a Dify one to uncomment."""
    return (
        header
        + f"""# An example bot: edit it, or delete this file. Field names are RongCloud's own.
userId: {EXAMPLE_USER_ID}      # the bot's identity on the server (a new userId = a new bot)
name: 示例机器人          # 1-128 characters
type: Example            # a free category label
profileUrl: https://example.com/robot.png
metadata:                # at most 16 pairs; values are strings (quote numbers)
  version: "1"
integrations:            # at least one, at most one per type
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
    objectNames: [RC:TxtMsg]
    events: ["message:private"]
  # A Dify app instead (or as well): the API base ending in /v1, the key from the environment.
  # - type: dify_chatflow      # dify_chat | dify_completion | dify_chatflow
  #   callbackUrl: https://api.dify.ai/v1
  #   auth:
  #     apiKey: ${{{dify_var}}}
"""
    )


def init_app(
    folder: Path,
    *,
    endpoint: str,
    key_var: str,
    secret_var: str,
    schemas_dir: Path,
    state: str | None = None,
) -> list[WrittenFile]:
    """Create ``folder`` with ``app.yaml`` (with the ``state`` block of that backend, when
    given) and the example bot (schemas written where missing). ConfigError when the folder
    already holds manifests."""
    if folder.exists() and any(folder.glob("*.y*ml")):
        raise ConfigError(
            f"{folder} already holds manifests",
            hint="init only starts a new app folder; edit the files there, or choose another"
            " app name",
        )
    written = write_schemas(schemas_dir, overwrite=False)
    app_file = folder / "app.yaml"
    bot_file = folder / f"{EXAMPLE_USER_ID}.yaml"
    dify_var = env_name("DIFY", folder.absolute().name, EXAMPLE_USER_ID, "CHATFLOW_KEY")
    texts = {
        app_file: app_yaml_text(
            endpoint,
            key_var,
            secret_var,
            modelines(folder, schemas_dir, "app"),
            state_yaml_lines(folder.absolute().name, state) if state else None,
        ),
        bot_file: example_bot_text(modelines(folder, schemas_dir, "bot"), dify_var),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot create {folder}: {exc.strerror or exc}",
            hint="check that the bots folder is writable",
        ) from exc
    return [*written, *(WrittenFile(path, "written") for path in texts), ignore_local_files()]


GITIGNORE_ENTRY = ".provisioner/"
"""What ``init`` keeps out of git: the emulator's database, the file state and its lock, the
journal and unsaved states (every path under ``.provisioner/`` of the working directory)."""


def ignore_local_files(root: Path = Path()) -> WrittenFile:
    """Add :data:`GITIGNORE_ENTRY` to ``root/.gitignore``: appended when the file lacks it
    (never rewritten), created when there is none, left alone when it already ignores it."""
    path = root / ".gitignore"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else None
        entries = {line.strip().strip("/") for line in (text or "").splitlines()}
        if GITIGNORE_ENTRY.strip("/") in entries:
            return WrittenFile(path, "unchanged")
        separator = "" if not text or text.endswith("\n") else "\n"
        with path.open("a", encoding="utf-8") as stream:
            stream.write(f"{separator}# provisioner's local files (state, locks, emulator)\n")
            stream.write(f"{GITIGNORE_ENTRY}\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"cannot add {GITIGNORE_ENTRY} to {path}: {reason}",
            hint=f"add the line {GITIGNORE_ENTRY} to .gitignore yourself",
        ) from exc
    return WrittenFile(path, "written" if text is None else "updated")


def check_endpoint(value: str) -> str:
    """``value`` when it is an endpoint or one ``${NAME}`` reference (ConfigError if not)."""
    if is_endpoint(value) or REFERENCE.fullmatch(value):
        return value
    raise ConfigError(
        f"--endpoint {value!r} is not an endpoint",
        hint="give local, a data center (cn, sg, sg-b, na, sa/sau), an https:// base URL"
        " (http:// only for 127.0.0.1/localhost), or ${NAME} to read it from the environment",
    )


def _yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar (quoted when a plain scalar would not read back as it)."""
    plain = value and yaml.safe_load(value) == value and ": " not in value and "#" not in value
    return value if plain else json.dumps(value)
