# ruff: noqa: E501  (expected output lines are kept whole, exactly as printed)
"""validate_app over the broken-manifest fixtures: every message asserted exactly, with its
file, line and column; plus valid fixtures, --require-env, discovery and a Hypothesis fuzz."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from provisioner.errors import ConfigError
from provisioner.manifest import MAX_FILE_BYTES, Document, parse_document
from provisioner.render.diagnostics import render_text
from provisioner.validate import (
    check_document,
    discover_apps,
    display_path,
    validate_app,
    validate_apps,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "manifests"

# Fixture folder -> the exact text output of `validate` for it (run from FIXTURES).
ONE_LINE_HINT = (
    "  hint: delete it: such characters are invisible and usually come in with pasted text"
)
EXPECTED: dict[str, list[str]] = {
    "app-credentials-missing": [
        "app-credentials-missing/app.yaml:1:1: error: appKey: required key is missing",
        "  hint: set appKey and appSecret: ${RONGCLOUD_APP_SECRET} for a RongCloud endpoint, or use endpoint: local",
        "app-credentials-missing/app.yaml:1:1: error: appSecret: required key is missing",
        "  hint: set appKey and appSecret: ${RONGCLOUD_APP_SECRET} for a RongCloud endpoint, or use endpoint: local",
    ],
    "app-endpoint-http": [
        "app-endpoint-http/app.yaml:1:11: error: endpoint: must be local, a data center (cn, sg, sg-b, na, sa/sau) or an https:// base URL without credentials, query or fragment",
        "  hint: http:// is allowed only for loopback hosts (localhost, 127.x.x.x, [::1]); use https://",
    ],
    "app-endpoint-unknown": [
        "app-endpoint-unknown/app.yaml:1:11: error: endpoint: must be local, a data center (cn, sg, sg-b, na, sa/sau) or an https:// base URL without credentials, query or fragment",
        "  hint: e.g. endpoint: cn, or endpoint: local for the embedded emulator",
    ],
    "app-missing": [
        "app-missing/app.yaml:1:1: error: app settings file is missing",
        "  hint: create it with `endpoint: local` to use the emulator, or a data center (cn, sg, sg-b, na, sa/sau) with appKey and appSecret",
    ],
    "app-rate-limit": [
        "app-rate-limit/app.yaml:2:12: error: rateLimit: must be greater than 0, got 0",
        "  hint: RongCloud allows at most 100 calls per second",
    ],
    "app-rate-limit-high": [
        "app-rate-limit-high/app.yaml:2:12: error: rateLimit: must be at most 100, got 250",
        "  hint: RongCloud allows at most 100 calls per second",
    ],
    "app-secret-literal": [
        "app-secret-literal/app.yaml:3:12: error: appSecret: holds a literal secret; it must be a ${NAME} environment reference",
        "  hint: move the secret to an environment variable and write appSecret: ${RONGCLOUD_APP_SECRET} (never commit the secret itself)",
    ],
    "app-state": [
        "app-state/app.yaml:3:12: error: state.backend: unknown value 's3'; expected one of file, git, postgres, gitlab",
        "app-state/app.yaml:4:3: error: state.bucket: unknown key",
        "  hint: did you mean 'backend'?",
    ],
    "app-state-dsn-password": [
        "app-state-dsn-password/app.yaml:4:8: error: state.dsn: holds a literal password; the DSN must come from the environment",
        '  hint: write dsn: "${PROVISIONER_STATE_DSN}" and keep the DSN in a secret, or leave the password out (PGPASSWORD, ~/.pgpass); never commit it',
        "app-state-dsn-password/app.yaml:5:12: error: state.readDsn: holds a literal password; the DSN must come from the environment",
        '  hint: write readDsn: "${PROVISIONER_STATE_READ_DSN}" and keep the DSN in a secret, or leave the password out (PGPASSWORD, ~/.pgpass); never commit it',
    ],
    "app-state-git-remote-url": [
        "app-state-git-remote-url/app.yaml:4:11: error: state.remote: must be the name of a git remote such as origin, not a URL",
        "  hint: add the repository as a remote (`git remote add NAME URL`) and give its name",
        "app-state-git-remote-url/app.yaml:5:11: error: state.branch: must be a branch name: letters, digits, '.', '_', '-' and '/' between parts, no '..' and no '.lock' ending",
        "  hint: e.g. branch: provisioner-state",
        "app-state-git-remote-url/app.yaml:6:3: error: state.path: unknown key",
        "  hint: allowed keys here: backend, branch, remote",
    ],
    "app-state-postgres-form": [
        "app-state-postgres-form/app.yaml:4:11: error: state.schema: must be a lower-case PostgreSQL identifier: letters, digits and _, at most 63",
        "  hint: e.g. schema: provisioner",
        "app-state-postgres-form/app.yaml:5:3: error: state.dns: unknown key",
        "  hint: did you mean 'dsn'?",
    ],
    "app-unknown-key": [
        "app-unknown-key/app.yaml:3:1: error: appsecret: unknown key",
        "  hint: did you mean 'appSecret'?",
    ],
    "app-yml-instead": [
        "app-yml-instead/app.yaml:1:1: error: app settings file is missing",
        "  hint: rename app-yml-instead/app.yml to app.yaml",
    ],
    "auth-literal-string": [
        "auth-literal-string/bot.yaml:8:11: error: integrations[0].auth: expected a mapping, got a string",
        "  hint: write auth: {apiKey: ${DIFY_API_KEY}} and keep the key in the environment",
    ],
    "auth-unknown-key": [
        "auth-unknown-key/bot.yaml:9:7: error: integrations[0].auth.apikey: unknown key",
        "  hint: did you mean 'apiKey'?",
    ],
    "callback-url-not-absolute": [
        "callback-url-not-absolute/bot.yaml:7:18: error: integrations[0].callbackUrl: must be an absolute http(s) URL",
        "  hint: write an absolute URL including the scheme, e.g. https://example.com/path",
    ],
    "dify-auth-missing": [
        "dify-auth-missing/bot.yaml:6:5: error: integrations[0].auth: required key is missing",
        "  hint: Dify integrations need `auth: {apiKey: ${DIFY_API_KEY}}`",
    ],
    "dify-callback-endpoint": [
        "dify-callback-endpoint/bot.yaml:7:18: error: integrations[0].callbackUrl: must be the Dify API base URL ending in /v1",
        "  hint: use the API base without the endpoint path: https://api.dify.ai/v1",
        "dify-callback-endpoint/bot.yaml:10:18: error: integrations[1].callbackUrl: must be the Dify API base URL ending in /v1",
        "  hint: use the API base without the endpoint path: https://dify.internal.example.com/v1",
    ],
    "dify-callback-no-v1": [
        "dify-callback-no-v1/bot.yaml:7:18: error: integrations[0].callbackUrl: must be the Dify API base URL ending in /v1",
        "  hint: drop the trailing slash: https://api.dify.ai/v1",
        "dify-callback-no-v1/bot.yaml:10:18: error: integrations[1].callbackUrl: must be the Dify API base URL ending in /v1",
        "  hint: e.g. https://api.dify.ai/v1 (self-hosted: https://<your-dify-host>/v1)",
    ],
    "dify-object-names": [
        'dify-object-names/bot.yaml:8:30: error: integrations[0].objectNames[1]: Dify integrations accept only RC:TxtMsg, not "RC:ImgMsg" (a provisioner policy, not a documented RongCloud limit)',
        "  hint: remove it; to receive other message types, add a webhook integration",
    ],
    "duplicate-integration-type": [
        "duplicate-integration-type/bot.yaml:8:11: error: integrations[1].type: a second webhook integration (the first is integrations[0])",
        "  hint: RongCloud keeps one integration per type and bot; merge them into one",
    ],
    "duplicate-user-id": [
        "duplicate-user-id/second.yml:1:9: error: userId: 'same-bot' is also the userId of duplicate-user-id/first.yaml:1:9",
        "  hint: every bot of an app needs its own userId; change one of them",
    ],
    "integration-booleans": [
        "integration-booleans/bot.yaml:8:14: error: integrations[0].enabled: expected true or false, got the string 'true'",
        "  hint: write enabled: true without quotes",
        "integration-booleans/bot.yaml:9:13: error: integrations[0].stream: expected true or false, got the number 1",
        "integration-booleans/bot.yaml:10:21: error: integrations[0].handleResponse: expected true or false, got no value",
        "  hint: write a value after the colon, or remove the key",
    ],
    "integration-type-missing": [
        "integration-type-missing/bot.yaml:6:5: error: integrations[0].type: required key is missing",
        "  hint: add `type:` (Integration type: webhook (your server), dify_chat (Dify Chatbot app), dify_completion (Dify Text Generator app) or dify_chatflow (Dify Chatflow app))",
    ],
    "integration-type-unknown": [
        "integration-type-unknown/bot.yaml:6:11: error: integrations[0].type: unknown value 'dify_workflow'; expected one of webhook, dify_chat, dify_completion, dify_chatflow",
        "  hint: did you mean 'dify_chatflow'?",
    ],
    "integrations-empty": [
        "integrations-empty/bot.yaml:5:15: error: integrations: must list at least one integration",
        "  hint: add a webhook or a Dify integration",
    ],
    "integrations-not-list": [
        "integrations-not-list/bot.yaml:6:3: error: integrations: expected a list, got a mapping",
    ],
    "many-errors-sorted": [
        "many-errors-sorted/a.yaml:8:1: error: extra: unknown key",
        "  hint: allowed keys here: userId, name, type, profileUrl, metadata, integrations, protect",
        "many-errors-sorted/b.yaml:1:1: error: integrations: required key is missing",
        "  hint: add `integrations:` (Where the bot's messages go: a webhook and/or a Dify app)",
        "many-errors-sorted/b.yaml:1:1: error: profileUrl: required key is missing",
        "  hint: add `profileUrl:` (Avatar image: an absolute http(s) URL of 1-256 characters)",
        "many-errors-sorted/b.yaml:1:1: error: type: required key is missing",
        '  hint: add `type:` (Free-form category label of the bot, e.g. "Message AI": 1-128 characters)',
        "many-errors-sorted/b.yaml:2:7: error: name: expected a string, got the boolean false (written `no`)",
        '  hint: quote it to keep it as text: name: "no"',
    ],
    "metadata-key-length": [
        "metadata-key-length/bot.yaml:6:3: error: metadata: a key must not be empty",
        "metadata-key-length/bot.yaml:7:3: error: metadata: key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk' is 33 characters long; at most 32 allowed",
    ],
    "metadata-key-control-characters": [
        "metadata-key-control-characters/bot.yaml:6:3: error: metadata: key 'ver\\u2028sion'"
        " holds U+2028 (LINE SEPARATOR) at character 4; a key must be one line of printable text",
        ONE_LINE_HINT,
        "metadata-key-control-characters/bot.yaml:7:3: error: metadata: key 'next\\u0085line'"
        " holds U+0085 (NEXT LINE) at character 5; a key must be one line of printable text",
        ONE_LINE_HINT,
        "metadata-key-control-characters/bot.yaml:8:3: error: metadata: key 'tab\\u0009key'"
        " holds U+0009 (TAB) at character 4; a key must be one line of printable text",
        ONE_LINE_HINT,
        "metadata-key-control-characters/bot.yaml:9:3: error: metadata: key 'vertical\\u000btab'"
        " holds U+000B (VERTICAL TAB) at character 9; a key must be one line of printable text",
        ONE_LINE_HINT,
        "metadata-key-control-characters/bot.yaml:10:3: error: metadata: key 'form\\u000cfeed'"
        " holds U+000C (FORM FEED) at character 5; a key must be one line of printable text",
        ONE_LINE_HINT,
        "metadata-key-control-characters/bot.yaml:11:3: error: metadata: key 'new\\u000aline'"
        " holds U+000A (LINE FEED) at character 4; a key must be one line of printable text",
        ONE_LINE_HINT,
    ],
    "metadata-nested": [
        "metadata-nested/bot.yaml:6:9: error: metadata.tags: expected a string, got a list",
    ],
    "metadata-number": [
        "metadata-number/bot.yaml:6:12: error: metadata.version: expected a string, got the number 1",
        '  hint: quote it to keep it as text: version: "1"',
        "metadata-number/bot.yaml:7:10: error: metadata.ratio: expected a string, got the number 1.1 (written `1.10`)",
        '  hint: quote it to keep it as text: ratio: "1.10"',
        "metadata-number/bot.yaml:8:9: error: metadata.beta: expected a string, got the boolean true (written `yes`)",
        '  hint: quote it to keep it as text: beta: "yes"',
    ],
    "metadata-too-many": [
        "metadata-too-many/bot.yaml:6:3: error: metadata: has 17 pairs; at most 16 allowed",
        "  hint: RongCloud keeps at most 16 metadata pairs per bot; remove some",
    ],
    "metadata-value-length": [
        "metadata-value-length/bot.yaml:6:10: error: metadata.empty: must not be empty",
        "metadata-value-length/bot.yaml:7:9: error: metadata.long: is 129 characters long; at most 128 allowed",
        "  hint: shorten it (lengths count characters, not bytes)",
    ],
    "missing-required": [
        "missing-required/bot.yaml:1:1: error: integrations: required key is missing",
        "  hint: add `integrations:` (Where the bot's messages go: a webhook and/or a Dify app)",
        "missing-required/bot.yaml:1:1: error: name: required key is missing",
        "  hint: add `name:` (Display name (nickname) of the bot: 1-128 characters on one line)",
        "missing-required/bot.yaml:1:1: error: profileUrl: required key is missing",
        "  hint: add `profileUrl:` (Avatar image: an absolute http(s) URL of 1-256 characters)",
        "missing-required/bot.yaml:1:1: error: type: required key is missing",
        '  hint: add `type:` (Free-form category label of the bot, e.g. "Message AI": 1-128 characters)',
    ],
    "errors-in-one-of-two": [
        "errors-in-one-of-two/bad.yaml:2:7: error: name: expected a string, got the boolean false"
        " (written `no`)",
        '  hint: quote it to keep it as text: name: "no"',
        "errors-in-one-of-two/bad.yaml:5:21: error: metadata.version: expected a string, got the"
        " number 1",
        '  hint: quote it to keep it as text: version: "1"',
    ],
    "name-boolean": [
        "name-boolean/bot.yaml:2:7: error: name: expected a string, got the boolean false (written `no`)",
        '  hint: quote it to keep it as text: name: "no"',
    ],
    "name-null": [
        "name-null/bot.yaml:2:6: error: name: expected a string, got no value",
        "  hint: write a value after the colon, or remove the key",
    ],
    "name-control-characters": [
        "name-control-characters/delete.yaml:2:7: error: name: holds U+007F (DELETE) at"
        " character 4; it must be one line of printable text",
        ONE_LINE_HINT,
        "name-control-characters/escape.yaml:2:7: error: name: holds U+001B (ESCAPE) at"
        " character 1; it must be one line of printable text",
        ONE_LINE_HINT,
        "name-control-characters/line-separator.yaml:2:7: error: name: holds U+2028 (LINE SEPARATOR) at"
        " character 5; it must be one line of printable text",
        ONE_LINE_HINT,
        "name-control-characters/paragraph-separator.yaml:2:7: error: name: holds U+2029 (PARAGRAPH SEPARATOR) at"
        " character 10; it must be one line of printable text",
        ONE_LINE_HINT,
        "name-control-characters/tab.yaml:2:7: error: name: holds U+0009 (TAB) at"
        " character 4; it must be one line of printable text",
        ONE_LINE_HINT,
        "name-control-characters/trailing-newline.yaml:2:7: error: name: holds U+000A (LINE FEED) at"
        " character 31; it must be one line of printable text",
        ONE_LINE_HINT,
    ],
    "name-number": [
        "name-number/bot.yaml:1:9: error: userId: expected a string, got the number 1234",
        '  hint: quote it to keep it as text: userId: "1234"',
        "name-number/bot.yaml:2:7: error: name: expected a string, got the number 3.1 (written `3.10`)",
        '  hint: quote it to keep it as text: name: "3.10"',
    ],
    "name-too-long-chinese": [
        "name-too-long-chinese/bot.yaml:2:7: error: name: is 129 characters long; at most 128 allowed",
        "  hint: shorten it (lengths count characters, not bytes)",
    ],
    "object-names-not-list": [
        "object-names-not-list/bot.yaml:8:18: error: integrations[0].objectNames: expected a list, got the string 'RC:TxtMsg'",
        "object-names-not-list/bot.yaml:9:33: error: integrations[0].events[1]: expected a string, got the number 42",
        '  hint: quote it to keep it as text: - "42"',
        "object-names-not-list/bot.yaml:9:37: error: integrations[0].events[2]: must not be empty",
    ],
    "notify-literal-url": [
        "notify-literal-url/app.yaml:4:10: error: notify[0].url: holds a literal webhook address; it must be a ${NAME} environment reference",
        "  hint: the address carries the robot's token: keep it in a secret and write url: ${DINGTALK_WEBHOOK_URL} (never commit it)",
        "notify-literal-url/app.yaml:5:13: error: notify[0].secret: holds a literal signing secret; it must be a ${NAME} environment reference",
        "  hint: anyone who has it can post as the robot: keep it in a secret and write secret: ${DINGTALK_SECRET} (never commit it)",
        "notify-literal-url/app.yaml:8:13: error: notify[1].secret: holds a literal signing secret; it must be a ${NAME} environment reference",
        "  hint: anyone who has it can post as the robot: keep it in a secret and write secret: ${FEISHU_SECRET} (never commit it)",
    ],
    "notify-on-key": [
        "notify-on-key/app.yaml:5:5: error: notify[0].on: unknown key",
        "  hint: write `when:` — YAML 1.1 reads a bare `on` as true, so the key is `when`",
    ],
    "notify-type-unknown": [
        "notify-type-unknown/app.yaml:3:11: error: notify[0].type: unknown value 'dingding'; expected one of dingtalk, feishu, wecom, webhook",
        "notify-type-unknown/app.yaml:5:5: error: notify[1].type: required key is missing",
        "  hint: add `type:` (dingtalk (DingTalk custom robot), feishu (Feishu/Lark custom bot), wecom (WeCom group robot) or webhook (provisioner's own JSON document, POSTed to the URL))",
    ],
    "notify-wecom-secret": [
        "notify-wecom-secret/app.yaml:5:13: error: notify[0].secret: a WeCom group robot has no signing secret",
        "  hint: remove it; protect the robot with keywords or an IP allow-list in its settings (docs/notify.md)",
    ],
    "notify-when": [
        "notify-when/app.yaml:5:11: error: notify[0].when: lists an event twice",
        "  hint: list each of drift, apply and failure at most once",
        "notify-when/app.yaml:8:12: error: notify[1].when[0]: unknown value 'deploy'; expected one of drift, apply, failure",
        "notify-when/app.yaml:11:11: error: notify[2].when: must list at least one event",
        "  hint: list drift, apply or failure, or leave `when` out for all three",
    ],
    "profile-url-ftp": [
        "profile-url-ftp/bot.yaml:4:13: error: profileUrl: must be an absolute http(s) URL",
        "  hint: write an absolute URL including the scheme, e.g. https://example.com/path",
    ],
    "profile-url-relative": [
        "profile-url-relative/bot.yaml:4:13: error: profileUrl: must be an absolute http(s) URL",
        "  hint: write an absolute URL including the scheme, e.g. https://example.com/path",
    ],
    "profile-url-too-long": [
        "profile-url-too-long/bot.yaml:4:13: error: profileUrl: is 261 characters long; at most 256 allowed",
        "  hint: shorten it (lengths count characters, not bytes)",
    ],
    "protect-not-boolean": [
        "protect-not-boolean/bot.yaml:8:10: error: protect: expected true or false, got the string 'yes'",
        "  hint: write protect: true without quotes",
    ],
    "reference-malformed": [
        "reference-malformed/bot.yaml:6:10: error: metadata.owner: `${` does not start a valid ${NAME} environment reference",
        "  hint: write ${NAME}: letters, digits and underscores, not starting with a digit",
        "reference-malformed/bot.yaml:7:12: error: metadata.channel: `${` does not start a valid ${NAME} environment reference",
        "  hint: write ${NAME}: letters, digits and underscores, not starting with a digit",
    ],
    "secret-literal-api-key": [
        "secret-literal-api-key/bot.yaml:9:15: error: integrations[0].auth.apiKey: holds a literal secret; it must be a ${NAME} environment reference",
        "  hint: move the secret to an environment variable and write apiKey: ${DIFY_API_KEY} (never commit the secret itself)",
    ],
    "secret-number-api-key": [
        "secret-number-api-key/bot.yaml:9:15: error: integrations[0].auth.apiKey: expected a string, got a number",
        "  hint: quote the value to keep it as text",
    ],
    "too-many-bots": [
        "too-many-bots/app.yaml:1:1: error: the app has 11 bots; RongCloud allows at most 10 per app (bot01.yaml, bot02.yaml, bot03.yaml, bot04.yaml, bot05.yaml, bot06.yaml, bot07.yaml, bot08.yaml, bot09.yaml, bot10.yaml, bot11.yaml)",
        "  hint: move some bots to another app folder, or delete their files",
    ],
    "type-empty": [
        "type-empty/bot.yaml:3:7: error: type: must not be empty",
    ],
    "type-too-long": [
        "type-too-long/bot.yaml:3:7: error: type: is 129 characters long; at most 128 allowed",
        "  hint: shorten it (lengths count characters, not bytes)",
    ],
    "unknown-key-callbackURL": [
        "unknown-key-callbackURL/bot.yaml:7:5: error: integrations[0].callbackURL: unknown key",
        "  hint: did you mean 'callbackUrl'?",
    ],
    "unknown-key-no-suggestion": [
        "unknown-key-no-suggestion/bot.yaml:8:1: error: color: unknown key",
        "  hint: allowed keys here: userId, name, type, profileUrl, metadata, integrations, protect",
    ],
    "unknown-key-top": [
        "unknown-key-top/bot.yaml:8:1: error: nmae: unknown key",
        "  hint: did you mean 'name'?",
    ],
    "user-id-control-char": [
        "user-id-control-char/bot.yaml:1:9: error: userId: holds U+0007 (a control character) at"
        " character 4; it must be one line of printable text",
        ONE_LINE_HINT,
    ],
    "user-id-line-break": [
        "user-id-line-break/next-line.yaml:1:9: error: userId: holds U+0085 (NEXT LINE) at"
        " character 5; it must be one line of printable text",
        ONE_LINE_HINT,
        "user-id-line-break/paragraph.yaml:1:9: error: userId: holds U+2029 (PARAGRAPH SEPARATOR) at"
        " character 5; it must be one line of printable text",
        ONE_LINE_HINT,
        "user-id-line-break/trailing-newline.yaml:1:9: error: userId: holds U+000A (LINE FEED) at"
        " character 9; it must be one line of printable text",
        ONE_LINE_HINT,
    ],
    "user-id-too-long": [
        "user-id-too-long/bot.yaml:1:9: error: userId: is 65 characters long; at most 64 allowed",
        "  hint: shorten it (lengths count characters, not bytes)",
    ],
    "user-id-reference": [
        "user-id-reference/bot.yaml:1:9: error: userId: userId is the bot's identity and cannot"
        " come from the environment: state would record the reference and the server its"
        " value, so the plan could never converge",
        "  hint: write the userId literally (it is not a secret: every message to the bot"
        " names it)",
    ],
    "user-id-whitespace": [
        "user-id-whitespace/bot.yaml:1:9: error: userId: must not contain whitespace or control characters",
    ],
    "yaml-bad-indent": [
        "yaml-bad-indent/bot.yaml:2:7: error: invalid YAML: mapping values are not allowed in this context",
        "  hint: fix the YAML syntax at this position",
    ],
    "yaml-billion-laughs": [
        "yaml-billion-laughs/bot.yaml:11:37: error: the document expands to more than 10000 nodes",
        "  hint: anchors and aliases (&name / *name) multiply nodes; repeat fewer of them",
    ],
    "yaml-comments-only": [
        "yaml-comments-only/bot.yaml:1:1: error: file is empty",
        "  hint: write the manifest's keys here, or delete the file",
    ],
    "yaml-complex-key": [
        "yaml-complex-key/bot.yaml:8:3: error: a mapping key must be plain text, not a list",
        "  hint: write keys as plain names such as `name:`",
    ],
    "yaml-custom-tag": [
        "yaml-custom-tag/bot.yaml:1:9: error: unsupported YAML tag !secret",
        "  hint: manifests hold plain mappings, lists, strings, numbers and booleans; remove the tag",
    ],
    "yaml-duplicate-key": [
        "yaml-duplicate-key/bot.yaml:8:1: error: duplicate key 'name' (first defined at line 2, column 1)",
        "  hint: remove one of them; YAML would silently keep only the last",
    ],
    "yaml-empty": [
        "yaml-empty/bot.yaml:1:1: error: file is empty",
        "  hint: write the manifest's keys here, or delete the file",
    ],
    "yaml-list-root": [
        "yaml-list-root/bot.yaml:1:1: error: the document is a list; a manifest must be a mapping of keys",
        "  hint: write `key: value` lines at the top level",
    ],
    "yaml-multiple-documents": [
        "yaml-multiple-documents/bot.yaml:8:1: error: file holds more than one YAML document",
        "  hint: keep one bot per file: remove the `---` separator and split the file",
    ],
    "yaml-not-utf8": [
        "yaml-not-utf8/bot.yaml:2:10: error: file is not valid UTF-8 (byte 0xe9)",
        "  hint: save the file as UTF-8",
    ],
    "yaml-python-tag": [
        "yaml-python-tag/bot.yaml:8:11: error: unsupported YAML tag !!python/object/apply:os.system",
        "  hint: manifests hold plain mappings, lists, strings, numbers and booleans; remove the tag",
    ],
    "yaml-recursive-alias": [
        "yaml-recursive-alias/bot.yaml:8:11: error: values are nested more than 64 levels deep",
        "  hint: an alias may refer to its own anchor; manifests need only a few levels",
    ],
    "yaml-scalar-root": [
        "yaml-scalar-root/bot.yaml:1:1: error: the document is a string; a manifest must be a mapping of keys",
        "  hint: write `key: value` lines at the top level",
    ],
    "yaml-tab-indent": [
        "yaml-tab-indent/bot.yaml:3:1: error: invalid YAML: a tab character cannot start a token here",
        "  hint: YAML does not allow tabs for indentation; indent with spaces",
    ],
    "yaml-tag-mismatch": [
        "yaml-tag-mismatch/bot.yaml:2:7: error: name: 'twelve' is not a valid !!int value",
        "  hint: remove the tag !!int, or write a value it takes",
    ],
    "yaml-unclosed-quote": [
        "yaml-unclosed-quote/bot.yaml:4:1: error: invalid YAML: found unexpected end of stream (while scanning a quoted scalar that starts at line 2, column 7)",
        "  hint: fix the YAML syntax at this position",
    ],
    "yaml-undefined-alias": [
        "yaml-undefined-alias/bot.yaml:8:11: error: invalid YAML: found undefined alias",
        "  hint: define the anchor (&name) before using the alias (*name)",
    ],
}


@pytest.fixture
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(FIXTURES)
    return FIXTURES


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_broken_fixture_messages(case: str, in_fixtures: Path) -> None:
    result = validate_app(Path(case))
    assert render_text(result.diagnostics).splitlines() == EXPECTED[case]
    assert result.app is None
    assert result.errors > 0
    assert result.name == case


def test_every_fixture_folder_is_in_the_table() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    broken = {name for name in folders if not name.startswith(("valid-", "warning-"))}
    assert broken == set(EXPECTED)
    assert len(broken) >= 40


def test_a_tag_mismatch_under_a_secret_field_does_not_show_the_value() -> None:
    text = "integrations:\n  - type: dify_chat\n    auth: {apiKey: !!int app-CANARY-literal}\n"
    document = parse_document(text.encode("utf-8"), "bot.yaml")
    (problem,) = [
        d for d in check_document(document, "bot", env={}) if d.code == "yaml-tag-mismatch"
    ]
    assert problem.message == "integrations[0].auth.apiKey: the value is not a valid !!int value"
    assert (problem.line, problem.column) == (3, 20)


def test_every_diagnostic_code_has_a_fixture(in_fixtures: Path) -> None:
    codes = {d.code for case in EXPECTED for d in validate_app(Path(case)).diagnostics}
    # env-missing, yaml-too-large and file-unreadable are exercised below (need an env or a
    # generated file); model-invalid only appears if the schema and the models disagree.
    assert codes >= {
        "yaml-syntax",
        "yaml-duplicate-key",
        "yaml-multiple-documents",
        "yaml-empty",
        "yaml-not-mapping",
        "yaml-encoding",
        "yaml-alias-budget",
        "yaml-too-deep",
        "yaml-unsupported-tag",
        "yaml-tag-mismatch",
        "yaml-complex-key",
        "schema-required",
        "unknown-key",
        "schema-type",
        "schema-min-length",
        "schema-max-length",
        "schema-pattern",
        "schema-enum",
        "schema-max-properties",
        "schema-min-items",
        "schema-key-length",
        "schema-range",
        "url-invalid",
        "endpoint-invalid",
        "secret-literal",
        "dify-callback-url",
        "dify-object-names",
        "duplicate-integration-type",
        "duplicate-user-id",
        "too-many-bots",
        "app-missing",
        "reference-malformed",
        "control-character",
    }


@pytest.mark.parametrize(
    "case", sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("valid-"))
)
def test_valid_fixtures_build_the_app(case: str, in_fixtures: Path) -> None:
    result = validate_app(Path(case))
    assert result.diagnostics == []
    assert result.app is not None
    assert len(result.app.bots) == len(result.files)
    assert set(result.app.sources.values()) == set(result.files)


def test_merge_keys_and_references_reach_the_models(in_fixtures: Path) -> None:
    app = validate_app(Path("valid-anchors-and-references")).app
    assert app is not None
    (bot,) = app.bots
    assert bot.userId == "anchored-bot"
    assert [(i.type, i.stream, i.callbackUrl) for i in bot.integrations] == [
        ("dify_chat", False, "https://api.dify.ai/v1"),
        ("dify_chatflow", True, "https://api.dify.ai/v1"),
    ]
    assert app.sources == {"anchored-bot": "valid-anchors-and-references/bot.yaml"}
    assert app.settings.rateLimit == 20


def test_a_literal_credential_in_a_url_is_a_warning(in_fixtures: Path) -> None:
    result = validate_app(Path("warning-url-credentials"))
    hint = (
        "  hint: take it from the environment, e.g. ?token=${HOOK_TOKEN} (then it is masked in"
        " every output and only fingerprinted in state); a literal is in every clone of the"
        " repository (fails with --strict)"
    )
    assert render_text(result.diagnostics).splitlines() == [
        "warning-url-credentials/bot.yaml:4:13: warning: profileUrl: the query parameter sig"
        " is a credential written literally into the URL",
        hint,
        "warning-url-credentials/bot.yaml:7:18: warning: integrations[0].callbackUrl: the"
        " password of user:password@ is a credential written literally into the URL",
        hint,
        "warning-url-credentials/bot.yaml:7:18: warning: integrations[0].callbackUrl: the"
        " query parameter token is a credential written literally into the URL",
        hint,
    ]
    assert (result.errors, result.warnings) == (0, 3)
    assert result.app is not None
    assert "hunter2" not in render_text(result.diagnostics)


def test_plain_http_is_a_warning_that_keeps_the_app(in_fixtures: Path) -> None:
    result = validate_app(Path("warning-http-urls"))
    assert render_text(result.diagnostics).splitlines() == [
        "warning-http-urls/bot.yaml:4:13: warning: profileUrl: uses plain http:// to a "
        "non-loopback host",
        "  hint: use https:// so the data is encrypted in transit (fails with --strict)",
        "warning-http-urls/bot.yaml:7:18: warning: integrations[0].callbackUrl: uses plain "
        "http:// to a non-loopback host",
        "  hint: use https:// so the data is encrypted in transit (fails with --strict)",
    ]
    assert (result.errors, result.warnings) == (0, 2)
    assert result.app is not None


def test_state_path_outside_the_working_directory_is_a_warning(in_fixtures: Path) -> None:
    result = validate_app(Path("warning-state-path-outside"))
    assert render_text(result.diagnostics).splitlines() == [
        "warning-state-path-outside/app.yaml:2:15: warning: state.path: is outside the working"
        " directory, so the state leaves the repository",
        "  hint: use a relative path without `..` such as .provisioner/state/<app>.json, or the"
        " git or postgres backend to share the state (fails with --strict)",
    ]
    assert (result.errors, result.warnings) == (0, 1)
    assert result.app is not None


@pytest.mark.parametrize(
    ("path", "outside"),
    [
        ("/var/lib/demo.json", True),
        ("~/demo.json", True),
        ("..", True),
        ("a/../../demo.json", True),
        ("a/../demo.json", False),
        (".provisioner/state/demo.json", False),
        ("..demo.json", False),
    ],
)
def test_state_path_outside_rule(path: str, outside: bool) -> None:
    text = f"endpoint: local\nstate: {{path: '{path}'}}\n".encode()
    codes = [d.code for d in check_document(parse_document(text, "app.yaml"), "app")]
    assert codes == (["state-path-outside"] if outside else [])


@pytest.mark.parametrize(
    ("dsn", "literal"),
    [
        ("postgresql://u:pw-literal@db/state", True),
        ("postgresql://u@db/state?password=pw-literal", True),
        ("host=db password=pw-literal dbname=state", True),
        ("host=db password='pw literal' dbname=state", True),
        ("postgresql://u:${PGPASS}@db/state", False),
        ("host=db password=${PGPASS} dbname=state", False),
        ("${PROVISIONER_STATE_DSN}", False),
        ("host=/run/postgresql dbname=state", False),
        ("postgresql:///state?host=/run/postgresql", False),
    ],
)
def test_literal_dsn_password_rule(dsn: str, literal: bool) -> None:
    text = f'endpoint: local\nstate: {{backend: postgres, dsn: "{dsn}"}}\n'.encode()
    found = check_document(parse_document(text, "app.yaml"), "app")
    assert [d.code for d in found] == (["secret-literal"] if literal else [])
    assert all("pw-literal" not in d.message and "pw literal" not in d.message for d in found)


def test_literal_secrets_are_never_echoed(in_fixtures: Path) -> None:
    cases = ("secret-literal-api-key", "app-secret-literal", "secret-number-api-key")
    for case in (*cases, "auth-literal-string", "app-state-dsn-password"):
        text = render_text(validate_app(Path(case)).diagnostics)
        for secret in (
            "app-AbCdEf0123456789",
            "s3cr3t-value",
            "1234567890",
            "LiteralKey0042",
            "hunter2-literal",
            "reader-literal-pw",
        ):
            assert secret not in text


def test_file_over_one_mib_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.yaml").write_text("endpoint: local\n")
    (tmp_path / "app" / "big.yaml").write_text("name: x\n" + "#" * MAX_FILE_BYTES)
    result = validate_app(Path("app"))
    assert render_text(result.diagnostics).splitlines() == [
        f"app/big.yaml:1:1: error: file is {MAX_FILE_BYTES + 8} bytes; manifests are limited "
        f"to {MAX_FILE_BYTES} bytes (1 MiB)",
        "  hint: a bot manifest is a few dozen lines; check that this is the right file",
    ]


def test_unreadable_manifest_is_a_diagnostic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.yaml").write_text("endpoint: local\n")
    (tmp_path / "app" / "bot.yaml").symlink_to(tmp_path / "missing.yaml")
    result = validate_app(Path("app"))
    assert [(d.file, d.code, d.message) for d in result.diagnostics] == [
        ("app/bot.yaml", "file-unreadable", "cannot read file: No such file or directory")
    ]


def test_require_env_names_missing_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    env = {"DIFY_ASSISTANT_KEY": "app-canary-assistant-value"}
    result = validate_app(Path("bots/demo"), env=env)
    assert render_text(result.diagnostics).splitlines() == [
        "bots/demo/companion.yaml:16:15: error: integrations[0].auth.apiKey: environment "
        "variable DIFY_COMPANION_KEY is not set",
        "  hint: export DIFY_COMPANION_KEY=... before running, or pass it as a CI secret",
        "bots/demo/translator.yaml:14:15: error: integrations[0].auth.apiKey: environment "
        "variable DIFY_TRANSLATOR_KEY is not set",
        "  hint: export DIFY_TRANSLATOR_KEY=... before running, or pass it as a CI secret",
    ]
    full = {**env, "DIFY_COMPANION_KEY": "x", "DIFY_TRANSLATOR_KEY": "y"}
    assert validate_app(Path("bots/demo"), env=full).diagnostics == []


def test_demo_validates_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = validate_app(Path("bots/demo"))
    assert result.diagnostics == []
    assert result.app is not None
    assert result.app.name == "demo"
    assert result.app.settings.endpoint == "local"
    assert result.app.sources == {
        "assistant-bot": "bots/demo/assistant.yaml",
        "companion-bot": "bots/demo/companion.yaml",
        "translator-bot": "bots/demo/translator.yaml",
    }
    types = {bot.userId: [i.type for i in bot.integrations] for bot in result.app.bots}
    assert types == {
        "assistant-bot": ["webhook", "dify_chatflow"],
        "companion-bot": ["dify_chat"],
        "translator-bot": ["dify_completion"],
    }


def test_discover_apps_accepts_root_and_app_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert discover_apps([Path("bots")]) == [Path("bots/demo")]
    assert discover_apps([Path("bots/demo"), Path("bots")]) == [Path("bots/demo")]
    apps = discover_apps([Path("tests/fixtures/manifests")])
    assert len(apps) == len(list(FIXTURES.iterdir()))


def test_discover_apps_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.yaml").write_text("a: 1\n")
    cases = {
        "nope": (
            "nope does not exist",
            "pass the bots folder (default: bots) or an app folder such as bots/demo",
        ),
        "empty": (
            "no app folders found in empty",
            "create empty/<app>/app.yaml and one YAML file per bot",
        ),
        "file.yaml": (
            "file.yaml is a file; validate works on app folders",
            "pass its app folder instead: provisioner validate .",
        ),
    }
    for given_path, (message, hint) in cases.items():
        with pytest.raises(ConfigError) as caught:
            discover_apps([Path(given_path)])
        assert (caught.value.message, caught.value.hint) == (message, hint)
    with pytest.raises(ConfigError, match="is not a folder"):
        validate_app(tmp_path / "file.yaml")


def test_validate_apps_in_parallel_matches_one_process(in_fixtures: Path) -> None:
    folders = discover_apps([Path(".")])
    assert len(folders) >= 64  # large enough to use the process pool
    sequential = validate_apps(folders, workers=1)
    assert validate_apps(folders, workers=2) == sequential
    assert [result.name for result in sequential] == sorted(set(EXPECTED) | VALID_AND_WARNING)
    env = {"BOT_ID": "x"}
    assert validate_apps(folders[:3], env=env, workers=2) == validate_apps(folders[:3], env=env)


VALID_AND_WARNING = {
    p.name for p in FIXTURES.iterdir() if p.name.startswith(("valid-", "warning-"))
}


def test_display_path_outside_cwd_is_kept_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    assert display_path(tmp_path / "x.yaml") == (tmp_path / "x.yaml").as_posix()
    assert display_path(FIXTURES / "app-missing") == "app-missing"
    assert os.path.isabs(display_path(tmp_path))


# --- Hypothesis: nothing a user can write makes validation crash -------------------------

YAML_PIECES = st.sampled_from(
    [
        "userId",
        "name",
        "type",
        "profileUrl",
        "metadata",
        "integrations",
        "auth",
        "apiKey",
        "callbackUrl",
        "webhook",
        "dify_chat",
        ": ",
        ":",
        "- ",
        "-",
        "\n",
        "\n  ",
        "\n    ",
        "\t",
        " ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a",
        "*a",
        "<<",
        "!!str",
        "!!int",
        "!x",
        "'",
        '"',
        "#",
        "---",
        "...",
        "|",
        ">",
        "?",
        "${X}",
        "${",
        "no",
        "1.10",
        "~",
        "null",
        "2024-01-01",
        "0x1F",
        "é",
        "消息",
        "\u0007",
        "\ufeff",
        "%YAML 1.1\n",
    ]
)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
)
KEYS = st.sampled_from(
    [
        "userId",
        "name",
        "type",
        "profileUrl",
        "metadata",
        "integrations",
        "protect",
        "auth",
        "apiKey",
        "callbackUrl",
        "objectNames",
        "events",
        "stream",
        "enabled",
        "endpoint",
        "appKey",
        "appSecret",
        "rateLimit",
        "state",
        "backend",
        "path",
    ]
) | st.text(max_size=10)
JSON_DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=25,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(YAML_PIECES, max_size=40).map("".join))
@example("userId: !!int")  # found by this test: PyYAML's int constructor indexes ""
@example("name: !!bool maybe\nrateLimit: !!float x\n")
def test_random_yaml_never_crashes(text: str) -> None:
    document = parse_document(text.encode("utf-8"), "fuzz.yaml")
    for kind in ("bot", "app"):
        for diagnostic in check_document(document, kind, env={}):
            assert diagnostic.line >= 1 and diagnostic.column >= 1
            assert diagnostic.message


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    document = parse_document(data, "fuzz.yaml")
    check_document(document, "bot")


@FUZZ
@given(st.dictionaries(KEYS, JSON_DOCS, max_size=8))
def test_random_json_documents_never_crash(value: dict[str, object]) -> None:
    dumped = yaml.safe_dump(value, allow_unicode=True).encode("utf-8")
    document = parse_document(dumped, "fuzz.yaml")
    for kind in ("bot", "app"):
        check_document(document, kind, env={"X": "1"})
        check_document(Document(file="raw.yaml", value=value), kind)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://127.0.0.1:8080/hook", False),
        ("http://127.8.9.10/hook", False),
        ("http://localhost/hook", False),
        ("http://[::1]:5001/v1", False),
        ("http://127.evil.example.com/hook", True),
        ("http://user@example.com/hook", True),
        ("http://[::2]/hook", True),
        ("https://example.com/hook", False),
    ],
)
def test_plain_http_warning_spares_only_loopback(url: str, warned: bool) -> None:
    value = {"userId": "b", "name": "B", "type": "T", "profileUrl": url, "integrations": []}
    diagnostics = check_document(Document(file="x.yaml", value=value), "bot")
    assert any(d.code == "insecure-url" for d in diagnostics) is warned
