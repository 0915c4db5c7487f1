"""Local stand-in for RongCloud's bot API (Starlette + uvicorn + SQLite) with fault injection.

Use :class:`EmulatorServer` (a context manager) and :class:`FaultConfig`; ``docs/emulator.md``
describes running it, the admin endpoints and the fault switches.

Assumptions to check against the real service (RongCloud does not document these; the same
list is in ``docs/emulator.md``):

1. Invented codes (RongCloud gives none): duplicate ``userId`` 400/1010; 10-bot quota and
   >20 ids on get 400/1502; unknown bot on update/delete 404/1404; unknown path 404/404, wrong
   method 405/405. ``random_undocumented_codes`` answers each with 400 and a random code.
   (Documented: 1002 parameter, 1004 signature, 1008 rate limit; injected 500s carry 1000.)
2. Statuses: 401 for a signature failure and 429 for the rate limit are documented; 400 for
   a parameter error (1002) and the statuses in 1. are ours. An unknown app key gets the
   real body ``{"code":1002,"errorMessage":"Invalidate App-Key."}`` (Java SDK README, status
   not shown) with HTTP 401.
3. Timestamps in seconds or milliseconds (above 10**11), within ±5 minutes; the signature
   hex is compared case-insensitively; a plain header wins over its ``RC-`` twin. Any nonce
   passes, of any length and repeated (RongCloud's Go SDK sends 19 digits, its Dify plugin
   one nonce per second); ``strict_signatures`` enforces the documented letter: at most 18
   characters, single use per app key for 10 minutes.
4. The rate limit counts accepted calls per app key and endpoint in a sliding 1-second
   window; a 429 carries code 1008 and ``Retry-After: 1``.
5. ``enabled``, ``stream``, ``handleResponse`` default to true and are always returned;
   ``metadata``, ``objectNames``, ``events`` and ``auth`` only when they were sent.
6. ``auth.apiKey`` is returned in plain text, or as ``******`` with ``mask_api_keys``; a Dify
   integration without it is refused at create/update (400/1002): the docs require the key,
   not that the API checks it then.
7. update is a full replace; ``createdAt`` stays, ``updatedAt`` moves.
8. get omits unknown ids, drops duplicates, keeps the request order; ``total`` = found,
   ``hasNext`` false; an empty ``userIds`` is 400/1002.
9. query lists oldest first; ``pageSize`` 1..100 and ``page`` 1..2**31-1, else 400/1002.
10. Undocumented lengths: ``callbackUrl`` <= 1024 and an absolute http(s) URL; ``apiKey``
    <= 512; ``objectNames``/``events`` entries 1..128; ``profileUrl`` is only length-checked.
11. Unknown body fields are ignored and not stored; ``Content-Type`` is not checked.
12. delete of an unknown bot is an error, not an idempotent success.
13. Request bodies over 1 MiB are refused with 413/1508 (RongCloud's table: 1508 "request
    body too large, keep it under 100 k", APIs not named); the cap and the status are ours.
"""

from __future__ import annotations

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.server import EmulatorServer

__all__ = ["EmulatorServer", "FaultConfig"]
