"""Local stand-in for RongCloud's bot API (Starlette + uvicorn + SQLite) with fault injection.

Use :class:`EmulatorServer` (a context manager) and :class:`FaultConfig`. Behaviour the real
service does not document is chosen by the emulator and listed in ``docs/emulator.md``
("Assumptions to check"):

- error codes: 400/1002 parameter error naming the field; 401/1004 every signature failure
  (also an unknown app key); 429/1008 rate limit with ``Retry-After: 1``; 400/1502 more than
  20 ids on get and the 10-bot quota; 400/1010 duplicate ``userId`` on create; 404/1404 unknown
  bot on update/delete; injected errors are HTTP 500 / code 1000;
- defaults stored and returned: ``enabled``, ``stream``, ``handleResponse`` true; ``metadata``,
  ``objectNames``, ``events`` and ``auth`` returned only when they were sent;
- update is a full replace; get omits unknown ids; query pages oldest first, pageSize 1..100;
- ``auth.apiKey`` comes back in plain text, or as ``******`` with ``mask_api_keys``;
- timestamps in seconds or milliseconds (above 10**11), ±5 minutes; a nonce is single use
  per app key; the signature hex is compared case-insensitively.
"""

from __future__ import annotations

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.server import EmulatorServer

__all__ = ["EmulatorServer", "FaultConfig"]
