"""HTTP statuses and RongCloud business codes the emulator answers with.

Codes marked ASSUMPTION are not documented by RongCloud for the bot API; they are the
emulator's choice (see ``docs/emulator.md``, "Assumptions to check"). With the fault switch
``random_undocumented_codes`` the invented ones give way to a random code (see
:func:`provisioner.emulator.faults.draw_undocumented_code`).
"""

from __future__ import annotations

STATUS_OK = 200
STATUS_BAD_REQUEST = 400
STATUS_UNAUTHORIZED = 401
STATUS_FORBIDDEN = 403
STATUS_NOT_FOUND = 404
STATUS_METHOD_NOT_ALLOWED = 405
STATUS_PAYLOAD_TOO_LARGE = 413  # ASSUMPTION: the HTTP status of code 1508
STATUS_TOO_MANY_REQUESTS = 429
STATUS_SERVER_ERROR = 500

CODE_OK = 200
CODE_INTERNAL = 1000  # RongCloud's table: internal error; the body code of an injected 500
CODE_PARAMETER = 1002
CODE_SIGNATURE = 1004
CODE_RATE_LIMITED = 1008
CODE_DUPLICATE_USER_ID = 1010  # ASSUMPTION: create with a userId that already exists
CODE_TOO_MANY = 1502  # ASSUMPTION for bots: >20 ids on get, and the 10-bot quota
CODE_BODY_TOO_LARGE = 1508  # RongCloud's table: "http 请求体过大" (request body too large)
CODE_NOT_FOUND = 1404  # ASSUMPTION: update/delete of an unknown bot (HTTP 404)

STATUS_UNDOCUMENTED = STATUS_BAD_REQUEST
"""HTTP status of every answer whose code ``random_undocumented_codes`` draws: a 4xx the client
takes as a final refusal (not a 5xx, which makes a write ambiguous; not 429, which is retried)."""
INVENTED_CODES = frozenset(
    {
        STATUS_NOT_FOUND,
        STATUS_METHOD_NOT_ALLOWED,
        CODE_DUPLICATE_USER_ID,
        CODE_TOO_MANY,
        CODE_NOT_FOUND,
    }
)
"""Codes the emulator invents for outcomes RongCloud gives no code for."""
DOCUMENTED_CODES = frozenset(
    {CODE_OK, *range(1000, 1020), 1050, 1501, CODE_TOO_MANY, CODE_BODY_TOO_LARGE, 2007}
)
"""Every code of RongCloud's server API code table (server-sdk-nodejs ``docs/errorcode.md``)."""
RANDOM_CODES = range(1000, 100_000)
"""Where random undocumented codes come from (minus the documented and invented ones)."""
