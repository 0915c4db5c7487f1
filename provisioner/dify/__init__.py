"""Dify checks: is each Dify integration's app reachable, of the right mode, answerable?

- :mod:`~provisioner.dify.protocol`: modes, RongCloud's callback and request, reading answers
  (pure: shared with the emulator's message runtime);
- :mod:`~provisioner.dify.client`: a small httpx client for one Dify app (timeouts, retries
  of Dify's concurrency limit, bounded reads, the key redacted from every message);
- :mod:`~provisioner.dify.routing`: where a Dify call goes (the stand-in for ``endpoint:
  local``) and which addresses RongCloud's servers cannot reach;
- :mod:`~provisioner.dify.targets`: the Dify integrations of loaded apps, with their
  manifest positions and resolved keys;
- :mod:`~provisioner.dify.preflight`: ``provisioner check`` (``GET /info``,
  ``GET /parameters``: no side effects);
- :mod:`~provisioner.dify.conversation`: ``provisioner check --converse`` (two real messages).

Importing this package imports none of them.
"""
