"""Validate app folders: JSON Schema + semantic + cross-file rules -> Diagnostics + DesiredApp.

    bots/<app>/app.yaml      app settings   (schemas/app.schema.json)
    bots/<app>/*.yaml|*.yml  one bot each   (schemas/bot.schema.json)

:func:`validate_app` reports every problem of every file of one app in one pass, each pointed
at file, line and column, and builds the :class:`~provisioner.models.DesiredApp` when there is
no error. The JSON Schemas are the contract (run with the ``jsonschema`` library, compiled
once); the pydantic models in :mod:`provisioner.models` mirror them and build the typed app.

The modules, in the order a folder goes through them:

- :mod:`.folders`: which folders are apps, their bot files, how messages name paths;
- :mod:`.app`: one folder -> Diagnostics + DesiredApp (:func:`validate_app`), one document's
  checks (:func:`check_document`);
- :mod:`.schema`: the JSON Schemas, and their errors as messages;
- :mod:`.characters`: the message of a control or line-break character in a ``userId``,
  ``name`` or metadata key (the one-line rule);
- :mod:`.references`: the ``${NAME}`` rules;
- :mod:`.rules`: the semantic and cross-file rules the schema cannot say.

Nothing here reads ``os.environ``: the environment is passed in (``env``) and only used to
check that referenced variables are set. No message ever contains a secret value.
"""

from __future__ import annotations

from provisioner.diagnostics import diagnostic_order, display_path
from provisioner.models import APP_FILE
from provisioner.validate.app import (
    PARALLEL_MIN_APPS,
    AppValidation,
    check_document,
    validate_app,
    validate_apps,
)
from provisioner.validate.folders import (
    MANIFEST_SUFFIXES,
    app_folders_of,
    bot_files,
    discover_apps,
    is_app_folder,
)
from provisioner.validate.references import ENV_MISSING, IDENTITY_PATHS, unset_variable
from provisioner.validate.rules import LOOPBACK_HOSTS

__all__ = [
    "APP_FILE",
    "ENV_MISSING",
    "IDENTITY_PATHS",
    "LOOPBACK_HOSTS",
    "MANIFEST_SUFFIXES",
    "PARALLEL_MIN_APPS",
    "AppValidation",
    "app_folders_of",
    "bot_files",
    "check_document",
    "diagnostic_order",
    "discover_apps",
    "display_path",
    "is_app_folder",
    "unset_variable",
    "validate_app",
    "validate_apps",
]
