"""The semantic rules the JSON Schema cannot say: per document (one integration per type,
plain-http and credential-in-URL warnings, the state block, the emulator block, an endpoint's
resolved value) and across the files of an app (at most 10 bots, unique userIds).
"""

from __future__ import annotations

import ipaddress
import os.path
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisioner.diagnostics import Diagnostic, JsonPath, Position, diagnostic_at, display_path
from provisioner.manifest import Document
from provisioner.models import APP_FILE, is_endpoint
from provisioner.secrets import REFERENCE, is_available
from provisioner.secrets.dsn import has_literal_password
from provisioner.secrets.urls import credential_places
from provisioner.validate.schema import max_bots_per_app

LOOPBACK_HOSTS = frozenset({"localhost", "[::1]"})
DSN_VARIABLES = {"dsn": "PROVISIONER_STATE_DSN", "readDsn": "PROVISIONER_STATE_READ_DSN"}
"""The variables the hints suggest for a literal DSN with a password."""
_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def app_checks(document: Document) -> list[Diagnostic]:
    """A warning for ``emulator`` settings that no emulator will read (not ``local``)."""
    endpoint = document.value.get("endpoint")
    if "emulator" not in document.value or not isinstance(endpoint, str):
        return []
    if endpoint == "local" or REFERENCE.search(endpoint):
        return []
    return [
        diagnostic_at(
            document.file,
            document.key_location(("emulator",)),
            ("emulator",),
            "emulator-ignored",
            f"is ignored: only endpoint: local starts the embedded emulator (endpoint is"
            f" {endpoint})",
            "remove it, or pass the stand-in's apps to `provisioner emulator serve"
            " --dify-apps FILE` for an emulator of your own",
            severity="warning",
        )
    ]


def endpoint_value_checks(document: Document, env: Mapping[str, str]) -> list[Diagnostic]:
    """With ``--require-env``: an ``endpoint`` holding ``${NAME}`` must resolve to a valid
    endpoint (what the plan will call); the message names the variable, never its value."""
    endpoint = document.value.get("endpoint")
    if not isinstance(endpoint, str):
        return []
    names = list(dict.fromkeys(REFERENCE.findall(endpoint)))
    if not names or any(not is_available(name, env) for name in names):
        return []
    value = REFERENCE.sub(lambda match: env[match.group(1)], endpoint)
    if is_endpoint(value):
        return []
    return [
        diagnostic_at(
            document.file,
            document.location(("endpoint",)),
            ("endpoint",),
            "endpoint-invalid",
            f"the value of {', '.join(names)} is not an endpoint",
            "set it to local, a data center (cn, sg, sg-b, na, sa/sau) or an https:// base URL",
        )
    ]


def bot_checks(document: Document) -> list[Diagnostic]:
    """One integration per type, and warnings for the URLs (credentials, plain http)."""
    integrations = document.value.get("integrations")
    listed = integrations if isinstance(integrations, list) else []
    found = _duplicate_types(document, listed)
    found.extend(_url_checks(document, listed))
    return found


def _duplicate_types(document: Document, integrations: list[Any]) -> list[Diagnostic]:
    """An error for each integration whose type an earlier one already has."""
    found: list[Diagnostic] = []
    seen: dict[str, int] = {}
    for index, integration in enumerate(integrations):
        kind = integration.get("type") if isinstance(integration, dict) else None
        if not isinstance(kind, str):
            continue
        if kind not in seen:
            seen[kind] = index
            continue
        path: JsonPath = ("integrations", index, "type")
        found.append(
            diagnostic_at(
                document.file,
                document.location(path),
                path,
                "duplicate-integration-type",
                f"a second {kind} integration (the first is integrations[{seen[kind]}])",
                "RongCloud keeps one integration per type and bot; merge them into one",
            )
        )
    return found


def _url_checks(document: Document, integrations: list[Any]) -> list[Diagnostic]:
    """Credential and plain-http warnings for ``profileUrl`` and each ``callbackUrl``."""
    urls: list[tuple[JsonPath, Any]] = [(("profileUrl",), document.value.get("profileUrl"))]
    for index, integration in enumerate(integrations):
        if isinstance(integration, dict):
            urls.append((("integrations", index, "callbackUrl"), integration.get("callbackUrl")))
    found: list[Diagnostic] = []
    for path, url in urls:
        if not isinstance(url, str):
            continue
        found.extend(_credential_warnings(document, path, url))
        if _is_plain_http_off_loopback(url):
            found.append(
                diagnostic_at(
                    document.file,
                    document.location(path),
                    path,
                    "insecure-url",
                    "uses plain http:// to a non-loopback host",
                    "use https:// so the data is encrypted in transit (fails with --strict)",
                    severity="warning",
                )
            )
    return found


def _credential_warnings(document: Document, path: JsonPath, url: str) -> list[Diagnostic]:
    """A warning for each credential written literally into a URL (an error with --strict)."""
    return [
        diagnostic_at(
            document.file,
            document.location(path),
            path,
            "credentials-in-url",
            f"{place} is a credential written literally into the URL",
            "take it from the environment, e.g. ?token=${HOOK_TOKEN} (then it is masked in"
            " every output and only fingerprinted in state); a literal is in every clone of"
            " the repository (fails with --strict)",
            severity="warning",
        )
        for place in credential_places(url)
    ]


def _is_plain_http_off_loopback(url: str) -> bool:
    if not url.lower().startswith("http://"):
        return False
    match = _HOST.match(url)
    host = (match.group(1) if match else "").rpartition("@")[2].lower()
    bracketed = host.startswith("[")
    host = host[: host.find("]") + 1] if bracketed else host.partition(":")[0]
    if host in LOOPBACK_HOSTS:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name
        return True


def state_checks(document: Document) -> list[Diagnostic]:
    """``state.path`` outside the working directory (a warning: the state leaves the
    repository), and a literal password in ``state.dsn`` or ``state.readDsn`` (an error: it
    is a secret)."""
    state = document.value.get("state")
    if not isinstance(state, dict):
        return []
    found: list[Diagnostic] = []
    backend, path = state.get("backend", "file"), state.get("path")
    if backend == "file" and isinstance(path, str) and path and _outside_working_dir(path):
        found.append(
            diagnostic_at(
                document.file,
                document.location(("state", "path")),
                ("state", "path"),
                "state-path-outside",
                "is outside the working directory, so the state leaves the repository",
                "use a relative path without `..` such as .provisioner/state/<app>.json, or"
                " the git or postgres backend to share the state (fails with --strict)",
                severity="warning",
            )
        )
    for field, variable in DSN_VARIABLES.items():
        value = state.get(field)
        if backend == "postgres" and isinstance(value, str) and has_literal_password(value):
            found.append(
                diagnostic_at(
                    document.file,
                    document.location(("state", field)),
                    ("state", field),
                    "secret-literal",
                    "holds a literal password; the DSN must come from the environment",
                    f'write {field}: "${{{variable}}}" and keep the DSN in a secret, or leave'
                    " the password out (PGPASSWORD, ~/.pgpass); never commit it",
                )
            )
    return found


def _outside_working_dir(path: str) -> bool:
    """Absolute, or climbing out with ``..`` (``a/../../b``)."""
    if Path(path).is_absolute() or path.startswith("~"):
        return True
    normal = os.path.normpath(path)
    return normal == ".." or normal.startswith(".." + os.sep) or normal.startswith("../")


def cross_file_checks(
    folder: Path, settings_doc: Document | None, bot_docs: list[Document]
) -> list[Diagnostic]:
    """At most 10 bots per app (the assembled-app schema's limit) and unique userIds."""
    found = _too_many_bots(folder, settings_doc, bot_docs)
    found.extend(_duplicate_user_ids(bot_docs))
    return found


def _too_many_bots(
    folder: Path, settings_doc: Document | None, bot_docs: list[Document]
) -> list[Diagnostic]:
    limit = max_bots_per_app()
    if len(bot_docs) <= limit:
        return []
    names = ", ".join(Path(document.file).name for document in bot_docs)
    return [
        diagnostic_at(
            settings_doc.file if settings_doc else display_path(folder / APP_FILE),
            (1, 1),
            (),
            "too-many-bots",
            f"the app has {len(bot_docs)} bots; RongCloud allows at most {limit} per app ({names})",
            "move some bots to another app folder, or delete their files",
        )
    ]


def _duplicate_user_ids(bot_docs: list[Document]) -> list[Diagnostic]:
    """An error at each bot whose userId an earlier file (in file order) already has."""
    found: list[Diagnostic] = []
    first_use: dict[str, tuple[str, Position]] = {}
    for document in bot_docs:
        user_id = document.value.get("userId") if document.loaded else None
        if not isinstance(user_id, str):
            continue
        position = document.location(("userId",))
        if user_id not in first_use:
            first_use[user_id] = (document.file, position)
            continue
        other, (line, column) = first_use[user_id]
        found.append(
            diagnostic_at(
                document.file,
                position,
                ("userId",),
                "duplicate-user-id",
                f"'{user_id}' is also the userId of {other}:{line}:{column}",
                "every bot of an app needs its own userId; change one of them",
            )
        )
    return found
