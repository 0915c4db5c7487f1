"""Local stand-in for RongCloud's bot API and messages (Starlette + uvicorn + SQLite) with
fault injection, and a Dify stand-in.

Use :class:`EmulatorServer` (a context manager) and :class:`FaultConfig`; the Dify stand-in is
:class:`~provisioner.emulator.dify.server.DifyStandIn`. ``docs/emulator.md`` describes running
them, the admin endpoints, the message runtime and the fault switches.

Assumptions to check against the real service: RongCloud does not document these, so the
emulator picked an answer. Every assumption about undocumented behaviour is in this one list,
which ``docs/emulator.md`` repeats word for word (tests/test_emulator_server.py checks it).

1. Invented codes. RongCloud gives no code for these outcomes, so the emulator invents them:
   duplicate ``userId`` → 400/1010 (RongCloud's own table uses 1010 for an SMS captcha error);
   the 10-bot quota and more than 20 ids on get → 400/1502 (the table's "count exceeded");
   unknown bot on update or delete → 404/1404 (in no table); unknown path → 404/404; wrong
   method → 405/405. With ``random_undocumented_codes`` each of them is HTTP 400 with a random
   code instead. Documented: 1002 parameter error, 1004 signature, 1008 rate limit; the injected
   500 carries the table's 1000 (internal error). Settled by ``duplicate_create``, ``bot_quota``
   and ``delete_absent`` (an update of a missing bot answers what a delete of one does when that
   is an error, else 404/1404); ``--generic-1002`` answers 1002 for both.
2. HTTP statuses. RongCloud documents 401 for a signature failure and 429 for the rate limit;
   the other statuses are the emulator's: 400 for a parameter error (1002), and those of items 1
   and 13. An unknown ``App-Key`` gets the real service's body,
   ``{"code":1002,"errorMessage":"Invalidate App-Key."}`` (captured in RongCloud's Java SDK
   README, without its status), with HTTP 401 like the other signature failures. Not probed.
3. Signature. The timestamp may be seconds or milliseconds (a value above 10^11 is
   milliseconds); the window is ±5 minutes; the hex signature is compared case-insensitively;
   ``App-Key`` wins over ``RC-App-Key`` when both are sent. Any nonce is accepted, of any length
   and as often as it comes: the docs say at most 18 characters, but RongCloud's Go SDK sends
   19-digit nonces and its Dify plugin reuses ``str(int(time.time()))`` for every call within a
   second, so the real service evidently accepts both. ``strict_signatures``
   (``--strict-signatures``) enforces the documented letter instead: at most 18 characters, and
   single use per app key for 10 minutes (a replay is 401/1004). Settled by ``nonce_reuse`` (a
   reused nonce refused with its code, HTTP 401); the length limit is not probed.
4. Rate limit counts only accepted calls, per app key and endpoint, in a sliding 1-second
   window; the 429 carries ``Retry-After: 1`` (undocumented) and code 1008. Not probed.
5. Defaults stored and returned: ``enabled``, ``stream``, ``handleResponse`` default to true and
   are always returned. ``metadata``, ``objectNames``, ``events`` and ``auth`` are returned only
   when they were sent (not as empty values). Not probed.
6. ``auth.apiKey`` is returned in plain text (``api_key_on_read: plain``), or as ``******`` with
   ``--mask-api-keys`` (``masked``), or left out (``absent``); settled by ``api_key_on_read``. A
   Dify integration without it is refused when the bot is created or updated (400/1002): the
   docs require the key, but not whether the API checks it then or only fails at message time
   (not probed).
7. update is a full replace: fields left out are removed. With ``update_omitted_fields: patch``
   (``--update-semantics patch``) they are kept instead: ``metadata`` merged key by key,
   integrations merged by type (one left out is kept, ``auth`` merged),
   ``objectNames``/``events`` replaced only when sent; with ``error:<code>`` an update that
   leaves out a field the bot has is refused with that code. ``createdAt`` stays, ``updatedAt``
   moves; both are milliseconds since the epoch. Settled by ``update_omitted_fields``.
8. get silently omits unknown ids (no error), drops duplicate ids, keeps the request order, and
   returns ``total`` = number found and ``hasNext`` = false. An empty ``userIds`` is 400/1002.
   Settled by ``get_unknown_id`` (``error:<code>``: an unknown id makes the whole call fail).
9. query lists bots oldest first; ``pageSize`` above 100 is 400/1002 (not clamped), and so is a
   ``page`` above 2^31−1; a page past the end is empty with the real ``total``. Not probed.
10. Limits not documented: ``callbackUrl`` ≤ 1024 characters and must be an absolute http(s)
    URL; ``auth.apiKey`` ≤ 512; each ``objectNames``/``events`` entry 1–128. ``profileUrl`` is
    only length-checked. ``userId`` must not contain whitespace. An integration ``type`` is one
    of ``webhook``, ``dify_chat``, ``dify_completion``, ``dify_chatflow`` (no
    ``dify_workflow``), at most one of each per bot (the SDK keys integration updates and
    deletes by type): settled by ``two_integrations_same_type``. A ``metadata`` value that is a
    JSON number (RongCloud's guide sends ``{"version": 1}``) is accepted and stored as its text
    (``"1"``), as a Map<String,String> would read it: settled by ``numeric_metadata``; the other
    limits are not probed.
11. Unknown body fields (``createdAt``, SDK-only ``agent``, ``waitForInputCompletion``,
    ``gentleResponse``) are ignored, not stored. The ``Content-Type`` is not checked. Not
    probed.
12. delete of an unknown bot is an error (404/1404), not an idempotent 200. Settled by
    ``delete_absent``.
13. Request bodies of the bot API over 100 KB (102,400 bytes) are refused with 413/1508, and not
    read past the cap; other endpoints (publish) take up to 1 MiB. RongCloud's code table has
    1508, "http 请求体过大，应小于 100 k" (request body too large,
    keep it under 100 k), without saying
    which APIs that covers; the HTTP status is the emulator's. Settled by ``body_limit_bytes``
    (null: 1 MiB).
14. Messages and request ids. Every ``errorMessage`` is the emulator's own wording (it names the
    field), except the unknown App-Key's. ``X-Request-ID`` is echoed, or a new UUID when the
    request has none; the docs show the header, not what happens without one. Not probed.
15. Publish. ``/message/private/publish.json`` answers
    ``{"code":200,"messageUIDs":[{"userId","messageUID"}]}`` (the shape RongCloud's Go SDK
    reads); a UID is four groups of four letters and digits, the emulator's own format. The
    form is checked for ``fromUserId`` and each ``toUserId`` (1–64 characters, at most 1000
    recipients), ``objectName`` (1–32) and ``content`` (a JSON text of at most 128 KB),
    400/1002 naming the field; every other field is ignored. A message to a user who is not a
    bot of the app is stored and fires nothing. Faults, signature and rate limit apply as for
    the bot API. Not probed.
16. What a message fires. Each enabled integration of the bot whose ``objectNames`` (when
    given) include the message's type and whose ``events`` (when given) include
    ``message:private``; a list left out means every type or event. They run in parallel once
    the publish call is answered, each at most 30 seconds (``callback_timeout``), without
    retries. The emulator calls only this machine: a webhook is sent only when its host is
    a loopback address, or a name that resolves (when the call is made) to loopback
    addresses only, the connection then pinned to the first, IPv4 first; a Dify call
    elsewhere goes to the Dify stand-in when one runs (``endpoint: local`` with
    ``emulator.dify``, or ``--dify-apps``) and is not sent otherwise; both are recorded as
    ``skipped``. Not probed.
17. Webhook callback. ``POST`` with a JSON body ``{type, timestamp, bot{userId, name,
    profileUrl, type, metadata}, data{fromUserId, toUserId, objectName, content,
    channelType}}``: ``timestamp`` in milliseconds, ``content`` the published content string,
    ``channelType`` ``PERSON``, ``metadata`` only when the bot has some; the signature
    parameters ``nonce`` (16 hex characters), ``signTimestamp`` (milliseconds) and
    ``signature`` are added to the URL's own query. A 2xx answer counts as delivered, its
    body is ignored. Not probed.
18. Dify request. ``inputs`` is the callback flattened, nested keys joined with ``_``
    (``type``, ``timestamp``, ``bot_userId``, ``bot_name``, ``bot_metadata_<key>``,
    ``data_fromUserId``, ``data_content``...), every value as text; RongCloud documents only
    ``bot_name``, ``data_fromUserId`` and ``data_content`` as examples. ``query``
    (``inputs.query`` for ``dify_completion``) is the ``content`` field of an ``RC:TxtMsg``'s
    JSON (the raw content for other types); ``user`` is the sender. ``provisioner check``
    counts exactly these variables as filled. Not probed.
19. Conversation. The ``conversation_id`` is kept per app, sender and bot for 24 hours from
    the exchange that started it (not from the last message); a 404 ``not_found`` from Dify
    forgets it, so the next message starts a new conversation (the failed message is not
    retried). The messages of one sender to one bot reach Dify one at a time, in order. Not probed.
20. Reply. With ``handleResponse`` (default true) the answer is stored as one ``RC:TxtMsg``
    from the bot to the sender, ``{"content": answer, "extra": ""}``, once it is whole
    (streamed or not); RongCloud pushes a streamed answer as a streaming message. A failed
    Dify call stores no reply (what RongCloud then tells the user is not documented). Not probed.
21. The Dify stand-in. Its error codes are Dify's; its messages are Dify's where Dify's docs
    or source give one (``Access token is invalid``, ``The app's API service has been
    disabled.``, ``The app no longer exists.``, ``App unavailable, please check your app
    configurations.``, ``Conversation Not Exists.``, ``Arg user must be provided.``, the input
    checks of ``_validate_inputs`` and the pydantic text of Dify's request models) and its
    own otherwise; an optional input left out has no default; a conversation's ``name`` is
    ``New conversation`` (Dify names it with a model); an optional query parameter of ``GET
    /messages`` or ``GET /conversations`` given empty counts as left out; the answers, their
    pieces, the ``usage`` numbers (character counts) and the faults' 429 messages are its own.
    Not probed.
22. Users. ``/user/getToken.json`` takes a form with ``userId`` (1–64 characters, no
    whitespace), ``name`` (at most 128, may be left out) and ``portraitUri`` (at most 1024), and
    answers ``{"code":200,"userId","token"}`` with a new random token on every call (not
    RongCloud's token format); registering a user again updates its name and portrait. A
    user need not be registered to send or receive a message. Not probed.
23. Integration delete. ``/v3/bot/integration/delete.json`` (``{userId, type}``, in RongCloud's
    Java SDK only) removes the bot's integrations of that type, even the last one; a bot or type
    it does not have is 404/1404. It is the only ``/v3/bot/integration/*`` call served. Not
    probed.
"""

from __future__ import annotations

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.server import EmulatorServer

__all__ = ["EmulatorServer", "FaultConfig"]
