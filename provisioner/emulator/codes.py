"""HTTP statuses and RongCloud business codes the emulator answers with.

Codes marked ASSUMPTION are not documented by RongCloud for the bot API; they are the
emulator's choice (see ``docs/emulator.md``, "Assumptions to check").
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
CODE_INTERNAL = 1000  # ASSUMPTION: body code of an (injected) HTTP 500
CODE_PARAMETER = 1002
CODE_SIGNATURE = 1004
CODE_RATE_LIMITED = 1008
CODE_DUPLICATE_USER_ID = 1010  # ASSUMPTION: create with a userId that already exists
CODE_TOO_MANY = 1502  # ASSUMPTION for bots: >20 ids on get, and the 10-bot quota
CODE_BODY_TOO_LARGE = 1508  # RongCloud's table: "http 请求体过大" (request body too large)
CODE_NOT_FOUND = 1404  # ASSUMPTION: update/delete of an unknown bot (HTTP 404)
