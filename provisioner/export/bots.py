"""Live bots -> manifests (``provisioner export``). The contract is the round trip: export,
then ``validate`` passes, ``plan`` (refresh) shows only adoptions without field changes,
``apply`` makes no write call, and the next ``plan`` shows no changes.

    live bot (query.json) --manifest_of--> mapping in RongCloud's field order, API defaults
        left out, auth.apiKey as ${NAME} --> bots/<app>/<userId>.yaml (new) or merged into
        the bot's existing manifest (--merge: comments and layout kept)

Secret variable names (:func:`secret_name`): ``DIFY_<APP>_<USERID>_<KIND>_KEY``, every run
of characters other than letters and digits an underscore, upper case, KIND the integration
type without ``dify_`` (``CHAT``, ``COMPLETION``, ``CHATFLOW``; ``WEBHOOK``); a name taken by
another bot of the same app gets ``_2``, ``_3``. A value is never written or shown, except
into the dotenv file asked for with ``--secrets-to`` when the API returns it in plain text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml.error import YAMLError

from provisioner.connect import connect
from provisioner.errors import ConfigError, ProvisionerError
from provisioner.export import roundtrip
from provisioner.export.scaffold import (
    WrittenFile,
    app_yaml_text,
    credential_names,
    env_name,
    modelines,
    write_schemas,
)
from provisioner.plan.canonical import is_masked
from provisioner.rongcloud.models import BotPayload, IntegrationPayload
from provisioner.secrets import REFERENCE
from provisioner.validate import bot_files, display_path
from provisioner.workspace import load_settings

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
RESERVED_STEMS = frozenset({"app"})
"""File names a bot must not take (``app.yaml`` holds the settings)."""


@dataclass(frozen=True)
class SecretRef:
    """One ``auth.apiKey`` exported as ``${name}``; ``value`` is None when the API masked it.
    ``repr`` leaves the value out."""

    name: str
    user_id: str
    integration: str
    value: str | None = field(repr=False)


@dataclass(frozen=True)
class ExportedBot:
    """One live bot as a manifest mapping (``${NAME}`` for secrets) and its secrets."""

    user_id: str
    manifest: dict[str, Any]
    secrets: tuple[SecretRef, ...]


def secret_name(app: str, user_id: str, integration: str) -> str:
    """The variable of one integration's ``auth.apiKey`` (see the module docstring)."""
    kind = integration.removeprefix("dify_")
    return env_name("DIFY", app, user_id, kind, "KEY")


def manifest_of(
    bot: BotPayload, app: str, taken: set[str], existing: Mapping[str, str] | None = None
) -> ExportedBot:
    """The manifest mapping of a live ``bot``: fields in the order of RongCloud's docs, API
    defaults and server fields left out. ``taken`` holds the secret names given so far in
    the app (updated); ``existing`` maps an integration type to the variable its current
    manifest already references (kept)."""
    manifest: dict[str, Any] = {
        "userId": bot.userId,
        "name": bot.name or "",
        "type": bot.type or "",
        "profileUrl": bot.profileUrl or "",
    }
    if bot.metadata:
        manifest["metadata"] = {key: str(value) for key, value in bot.metadata.items()}
    integrations: list[dict[str, Any]] = []
    secrets: list[SecretRef] = []
    for integration in bot.integrations or ():
        item, secret = _integration_of(integration, app, bot.userId, taken, existing or {})
        integrations.append(item)
        if secret is not None:
            secrets.append(secret)
    manifest["integrations"] = integrations
    return ExportedBot(bot.userId, manifest, tuple(secrets))


def _integration_of(
    integration: IntegrationPayload,
    app: str,
    user_id: str,
    taken: set[str],
    existing: Mapping[str, str],
) -> tuple[dict[str, Any], SecretRef | None]:
    item: dict[str, Any] = {"type": integration.type, "callbackUrl": integration.callbackUrl}
    if integration.enabled is False:
        item["enabled"] = False
    for listing in ("objectNames", "events"):
        values = getattr(integration, listing)
        if values:
            item[listing] = list(values)
    for flag in ("stream", "handleResponse"):
        if getattr(integration, flag) is False:
            item[flag] = False
    needs_key = integration.type.startswith("dify_") or integration.auth is not None
    if not needs_key:
        return item, None
    name = existing.get(integration.type) or _unique(
        secret_name(app, user_id, integration.type), taken
    )
    taken.add(name)
    item["auth"] = {"apiKey": f"${{{name}}}"}
    value = integration.auth.apiKey if integration.auth is not None else ""
    plain = None if is_masked(value) else value
    return item, SecretRef(name, user_id, integration.type, plain)


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


def file_stem(user_id: str, taken: set[str]) -> str:
    """A file name (without ``.yaml``) for a bot: its userId with every character other than
    letters, digits, ``.``, ``_`` and ``-`` an underscore, not starting with a dot (a hidden
    file) or a dash (``rm *`` and ``git add *`` would read it as an option), not ``app``, and
    unique (case-insensitively) among ``taken`` (updated; lower case)."""
    stem = _UNSAFE_FILE_CHARS.sub("_", user_id)
    stem = "_" + stem[1:] if stem.startswith((".", "-")) else stem
    stem = stem or "bot"
    candidate, number = stem, 2
    while candidate.lower() in taken or candidate.lower() in RESERVED_STEMS:
        candidate, number = f"{stem}-{number}", number + 1
    taken.add(candidate.lower())
    return candidate


def referenced_name(value: object) -> str | None:
    """The variable of a value that is exactly one ``${NAME}`` (else None)."""
    if not isinstance(value, str):
        return None
    match = REFERENCE.fullmatch(value)
    return match.group(1) if match else None


# --- one app -----------------------------------------------------------------------------


@dataclass
class AppExport:
    """What exporting one app did: files written, bots only in manifests, secrets named."""

    name: str
    folder: Path
    bots: int = 0
    files: list[WrittenFile] = field(default_factory=list)
    gone: list[tuple[str, str]] = field(default_factory=list)
    """(userId, manifest file) of bots declared in a manifest but not on the server."""
    secrets: list[SecretRef] = field(default_factory=list)
    error: ProvisionerError | None = None


@dataclass(frozen=True)
class Existing:
    """A bot manifest already in the app folder (for --merge)."""

    path: Path
    text: str
    data: Any


def existing_manifests(folder: Path) -> dict[str, Existing]:
    """userId -> the manifest declaring it, for every bot file of ``folder`` (ConfigError
    naming the file when one cannot be read as YAML)."""
    found: dict[str, Existing] = {}
    for path in bot_files(folder):
        try:
            text = path.read_text(encoding="utf-8")
            data = roundtrip.load(text)
        except (OSError, UnicodeDecodeError, YAMLError) as exc:
            raise ConfigError(
                f"{display_path(path)}: cannot be merged into: {type(exc).__name__}",
                hint="`provisioner validate` shows what is wrong; fix or remove the file, then"
                " export again",
            ) from None
        user_id = data.get("userId") if isinstance(data, dict) else None
        if isinstance(user_id, str):
            found.setdefault(user_id, Existing(path, text, data))
    return found


def write_bots(
    result: AppExport,
    live: Sequence[BotPayload],
    *,
    merge: bool,
    schemas_dir: Path,
) -> None:
    """Write one manifest per live bot into ``result.folder`` (see the module docstring)."""
    existing = existing_manifests(result.folder) if merge else {}
    if not merge and bot_files(result.folder):
        raise ConfigError(
            f"{display_path(result.folder)} already holds bot manifests",
            hint="pass --merge to update them in place (comments and layout are kept), or"
            " export into a new app folder",
        )
    header = modelines(result.folder, schemas_dir, "bot")
    taken_files = {path.stem.lower() for path in bot_files(result.folder)}
    taken_names = _referenced_names(existing.values())
    result.bots = len(live)
    for bot in sorted(live, key=lambda bot: bot.userId):
        old = existing.get(bot.userId)
        exported = manifest_of(bot, result.name, taken_names, _keys_of(old))
        result.secrets.extend(exported.secrets)
        if old is not None:
            result.files.append(_merged(old, exported))
        else:
            path = result.folder / f"{file_stem(bot.userId, taken_files)}.yaml"
            result.files.append(_write_new(path, exported, header))
    declared = {bot.userId for bot in live}
    result.gone = [
        (user_id, display_path(old.path))
        for user_id, old in existing.items()
        if user_id not in declared
    ]


def _referenced_names(manifests: Sequence[Existing] | Any) -> set[str]:
    names: set[str] = set()
    for old in manifests:
        names.update(_keys_of(old).values())
    return names


def _keys_of(old: Existing | None) -> dict[str, str]:
    """integration type -> the variable its ``auth.apiKey`` references in ``old``."""
    if old is None or not isinstance(old.data.get("integrations"), list):
        return {}
    keys: dict[str, str] = {}
    for item in old.data["integrations"]:
        auth = item.get("auth") if isinstance(item, dict) else None
        name = referenced_name(auth.get("apiKey")) if isinstance(auth, dict) else None
        if name is not None and isinstance(item.get("type"), str):
            keys[item["type"]] = name
    return keys


def _write_new(path: Path, exported: ExportedBot, header: str) -> WrittenFile:
    _write(path, roundtrip.dump(exported.manifest, header=header))
    return WrittenFile(path, "written")


def _merged(old: Existing, exported: ExportedBot) -> WrittenFile:
    text = roundtrip.merged_text(old.text, old.data, exported.manifest)
    if text is None:
        return WrittenFile(old.path, "unchanged")
    _write(old.path, text)
    return WrittenFile(old.path, "updated")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {display_path(path)}: {exc.strerror or exc}",
            hint="check that the app folder is writable",
        ) from exc


@dataclass(frozen=True)
class NewApp:
    """How to write ``app.yaml`` for an app folder that has none (``export --endpoint``)."""

    endpoint: str | None
    key_var: str | None
    secret_var: str | None


def export_app(
    folder: Path,
    env: Mapping[str, str],
    *,
    new_app: NewApp,
    merge: bool,
    schemas_dir: Path,
) -> AppExport:
    """Export one app: write ``app.yaml`` first when the folder has none, read every bot
    through the API, write the manifests. Errors are returned in ``AppExport.error``."""
    result = AppExport(folder.absolute().name, folder)
    try:
        result.files.extend(_ensure_app_yaml(folder, env, new_app, schemas_dir))
        app = load_settings(folder, env)
        with connect(app, env) as client:
            live = client.query_bots(include_integrations=True)
        write_bots(result, live, merge=merge, schemas_dir=schemas_dir)
    except ProvisionerError as exc:
        result.error = exc
    return result


def _ensure_app_yaml(
    folder: Path, env: Mapping[str, str], new_app: NewApp, schemas_dir: Path
) -> list[WrittenFile]:
    """``app.yaml`` for a new app folder, once the credentials it references are set."""
    path = folder / "app.yaml"
    if path.is_file():
        return []
    if new_app.endpoint is None:
        raise ConfigError(
            f"{display_path(path)} does not exist",
            hint="pass --endpoint (local, a data center such as cn, or a base URL) so export"
            " writes it, with references for the App Key and Secret",
        )
    default_key, default_secret = credential_names(folder.absolute().name)
    key_var = new_app.key_var or default_key
    secret_var = new_app.secret_var or default_secret
    unset = [name for name in (key_var, secret_var) if name not in env]
    if new_app.endpoint != "local" and unset:
        raise ConfigError(
            f"export needs the app's credentials to read its bots: {', '.join(unset)} not set",
            hint=f"export {' '.join(f'{name}=...' for name in unset)} (from the RongCloud"
            " console's App Key page), then run again",
        )
    written = [item for item in write_schemas(schemas_dir, overwrite=False)]
    header = modelines(folder, schemas_dir, "app")
    folder.mkdir(parents=True, exist_ok=True)
    _write(path, app_yaml_text(new_app.endpoint, key_var, secret_var, header))
    return [*(item for item in written if item.status == "written"), WrittenFile(path, "written")]


# --- the secrets file --------------------------------------------------------------------

SECRETS_MODE = 0o600
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:/+=@-]*$")


class SecretsFile(NamedTuple):
    """The new dotenv file of ``--secrets-to``, open for writing."""

    path: Path
    descriptor: int


def create_secrets_file(path: Path) -> SecretsFile:
    """Create ``path`` for the dotenv file, readable by its owner only; refused when it
    exists (whatever it holds), so a secret never lands in a file others can read. Returns
    it open (the caller writes and closes it with :func:`write_secrets`)."""
    try:
        return SecretsFile(path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRETS_MODE))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        readable = "" if mode == SECRETS_MODE else f" and is readable by others (mode {mode:o})"
        raise ConfigError(
            f"--secrets-to {display_path(path)}: the file already exists{readable}",
            hint="give a new file name (it is created with mode 600), or remove the old file"
            " once its values are where they belong",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"--secrets-to {display_path(path)}: cannot create it: {exc.strerror or exc}",
            hint="give a file in a writable folder",
        ) from exc


def write_secrets(file: SecretsFile, exports: Sequence[AppExport]) -> tuple[int, int] | None:
    """Write every plain-text key of ``exports`` as ``NAME=value`` (masked ones as a comment)
    and close ``file``; returns (values written, masked). When no app had a Dify key (or
    every app failed), the file is removed again and None returned."""
    if not any(result.secrets for result in exports):
        os.close(file.descriptor)
        file.path.unlink(missing_ok=True)
        return None
    lines = ["# Dify API keys exported by `provisioner export`. Keep this file secret."]
    written = masked = 0
    for result in exports:
        for secret in result.secrets:
            where = f"{result.name}/{secret.user_id} {secret.integration}"
            if secret.value is None:
                lines.append(f"# {secret.name}: masked by the API; copy it from Dify ({where})")
                masked += 1
            else:
                lines.append(f"{secret.name}={_dotenv_value(secret.value)}")
                written += 1
    with os.fdopen(file.descriptor, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    return written, masked


def _dotenv_value(value: str) -> str:
    """``value`` as is when plain, else single-quoted: literal for ``sh`` (``set -a && .
    FILE``), ``--env-file`` and the bundle reader alike, so a ``$`` is never expanded. A
    ``'`` is written ``'\\''`` (close, an escaped quote, reopen), as the shell needs."""
    if _PLAIN_VALUE.match(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"
