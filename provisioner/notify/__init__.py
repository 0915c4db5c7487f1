"""Notifications: what `drift`, `apply`, `github drift` and `github apply` tell the chat
groups and webhooks an app lists under ``notify:`` (docs/notify.md).

    summary.py    what one message says about one app (drift, apply, failure)   pure
    messages.py   the texts in English and Chinese; markdown and plain shapes     pure
    target.py     a resolved target, a request, how an answer is read
    dingtalk.py   DingTalk custom robot (markdown; signed query)
    feishu.py     Feishu/Lark custom bot (post; signed body)
    wecom.py      WeCom group robot (markdown)
    webhook.py    provisioner's own JSON document (optionally HMAC-signed)
    deliver.py    one POST per app and target, bounded, one retry; warnings, never errors
"""

from provisioner.notify.deliver import NotifySettings, notify
from provisioner.notify.summary import Summary, apply_summaries, drift_summaries
from provisioner.render.texts import DEFAULT_LANG, Lang

__all__ = [
    "DEFAULT_LANG",
    "Lang",
    "NotifySettings",
    "Summary",
    "apply_summaries",
    "drift_summaries",
    "notify",
]
