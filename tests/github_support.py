"""Plan documents for the GitHub tests, made by the real plan core (``Plan.document``)."""

from __future__ import annotations

from typing import Any

from provisioner.plan import make_plan
from tests.test_plan import ENV, make_app, make_bot, record

CANARY_SECRET = "CANARY-dify-key-5e1f7a90"
"""Planted as a bot's Dify key in :func:`created_doc` with ``secret=True``."""


def created_doc(app: str, bots: int = 2, *, wide: bool = False) -> dict[str, Any]:
    """A new app whose plan creates ``bots`` bots; ``wide`` fills every metadata slot with
    long values, so the plan text is large."""
    metadata = {f"key{index:02d}": "v" * 120 for index in range(16)} if wide else {"v": "1"}
    desired = make_app(
        *(make_bot(f"bot-{index:02d}", metadata=metadata) for index in range(bots)), name=app
    )
    return make_plan(desired, record(make_app(name=app)), ENV).document


def unchanged_doc(app: str) -> dict[str, Any]:
    desired = make_app(make_bot("assistant"), name=app)
    return make_plan(desired, record(desired), ENV).document


def deleting_doc(app: str) -> dict[str, Any]:
    """An app whose plan deletes ``old-bot`` and updates ``assistant``'s name."""
    recorded = record(make_app(make_bot("assistant"), make_bot("old-bot"), name=app))
    desired = make_app(make_bot("assistant", name="Renamed"), name=app)
    return make_plan(desired, recorded, ENV).document


def blocked_doc(app: str) -> dict[str, Any]:
    """Deletes every managed bot: blocked unless --allow-empty."""
    recorded = record(make_app(make_bot("only"), name=app))
    return make_plan(make_app(name=app), recorded, ENV).document
