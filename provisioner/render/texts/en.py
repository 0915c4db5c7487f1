"""The English review texts (the default). Keys and placeholders match :mod:`.zh_cn`; so do
the forges and names of :data:`TERMS`."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, str]] = {
    # --- shared pieces ----------------------------------------------------------------------
    "list.separator": ", ",
    "count.replace": "{n} to replace",
    "count.delete": "{n} to delete",
    "count.create": "{n} to create",
    "count.adopt": "{n} to adopt",
    "count.update": "{n} to update",
    "count.drift": "{n} drifted",
    "count.unmanaged": "{n} unmanaged",
    "count.none": "no changes",
    "count.with_extra": "{changes}; {extra}",
    "action.create": "create",
    "action.update": "update",
    "action.delete": "delete",
    "action.adopt": "adopt",
    "action.replace": "replace",
    "plan.replacement": (
        "the userId changes, so the bot's identity changes: {old} is deleted and {new} created"
        " (users see a new bot; what RongCloud keeps for {old} is not moved over)"
    ),
    "plan.no_state": "no recorded state yet",
    "plan.state": "state serial {serial}, lineage {lineage}",
    "plan.unchecked": (
        "Not checked in this run (no value in the environment): {names}; each reference is"
        " taken as unchanged where the state records it"
    ),
    # --- a plan in markdown (render/markdown.py) ----------------------------------------------
    "md.blocked_note": (
        "**Blocked by a safety rule: nothing will be applied until the block is lifted; each"
        " reason says how.**"
    ),
    "md.truncated": (
        "\n> [!NOTE]\n> The plan was too long for one comment and is truncated here. Run"
        " `provisioner plan --format json` or see the saved `plan --out` file for all of it.\n"
    ),
    "md.overview": "## Plan for {count} apps: {blocked}",
    "md.no_changes": "No changes: {apps}",
    "md.blocked_title": "BLOCKED ({blocked} of {count} apps) — ",
    "md.blocked": "BLOCKED — ",
    "md.blocked_word": "BLOCKED",
    "md.app_heading": "### Plan for {app}: {blocked}{summary}",
    "md.plan_id": "Plan id: `{id}` ({state})",
    "md.unmanaged": "**Unmanaged** (on the server, never recorded; left alone): {names}",
    "md.will_be_deleted.one": "**{count} bot will be deleted:** {names}",
    "md.will_be_deleted.other": "**{count} bots will be deleted:** {names}",
    "md.replaced": "**Replaced** {pair}: {warning}",
    "md.drift": "**Drift** (changed on the server outside git; recorded → live):",
    "md.missing": "missing on the server",
    "md.full_plan": "Full plan",
    "md.table_header": "| Action | Bot | Field | Before | After |",
    "md.new_bot": "*(new bot)*",
    "md.whole_bot": "*(whole bot)*",
    "md.protected": "protected",
    # --- the plan comment (github/comment.py) -------------------------------------------------
    "comment.title": "## provisioner plan: {blocked}{parts}",
    "comment.with_changes": "{shown} of {count} apps with changes",
    "comment.none_planned": "no apps planned",
    "comment.failed": "{count} failed to plan",
    "comment.total": "**Total:** {counts}",
    "comment.could_not_plan": "**Could not plan (see the job log):**",
    "comment.table_header": "| App | Changes | Plan id |",
    "comment.blocked": "**BLOCKED** — ",
    "comment.stub": "- {app}: cut, see the {ci_summary}\n",
    "comment.cut_summary": (
        "\n> [!NOTE]\n> This summary was cut to fit {forge}'s {comment} limit; the full plan is in"
        " the {ci_summary}.\n"
    ),
    "comment.cut_app": (
        "\n> [!NOTE]\n> The plan of {app} was cut to fit {forge}'s {comment} limit; the full plan"
        " is in the {ci_summary}.\n"
    ),
    "comment.footer": (
        "\n---\nPlanned `{sha}` from the recorded state · [{ci_run}]({url}) (full plan in its"
        " {ci_summary}) · after the merge, apply makes exactly the changes shown here, bot by"
        " bot\n"
    ),
    # --- the apply outcome (github/outcome.py) -----------------------------------------------
    "outcome.refused": "⛔ refused: {reason}",
    "outcome.refused_hint": "⛔ refused: {reason} — **what to do:** {hint}",
    "outcome.left": "➖ left alone: {reason}",
    "outcome.left_hint": "➖ left alone: {reason} — {hint}",
    "outcome.failed": "❌ failed: {error}",
    "outcome.not_attempted": "⏸ not attempted (the apply stopped first): re-run it",
    "outcome.record": "already as declared on the server (recorded, no call)",
    "outcome.forget": "already gone from the server (forgotten from the state, no call)",
    "outcome.done": "nothing to do (already as declared)",
    "outcome.made.create": "created",
    "outcome.made.update": "updated",
    "outcome.made.delete": "deleted",
    "outcome.made.adopt": "adopted (the server already held it as declared; no call)",
    "outcome.app_refused": "⛔ refused",
    "outcome.app_partly": "⚠️ partly applied",
    "outcome.app_failed": "❌ failed",
    "outcome.app_applied": "✅ applied",
    "outcome.app_nothing": "✅ nothing to do",
    "outcome.bots_refused.one": "{result} ({count} bot refused)",
    "outcome.bots_refused.other": "{result} ({count} bots refused)",
    "outcome.shard": " (shard {shard} of {shards})",
    "outcome.title": "## provisioner apply{part}: {done} of {count} apps done",
    "outcome.attention": ", {count} need attention",
    "outcome.nothing": "This merge changed no bot: nothing to apply.",
    "outcome.table_header": "| App | Result | Applied | Failed | Not attempted | Why |",
    "outcome.pending": (
        "**What remains** is in the pending plan {url}: a reviewer applies it with {dispatch}"
        " (`{command} apply --pending N`, in {gate})."
    ),
    "outcome.footer": (
        "\n---\nMerge commit `{sha}` · [{ci_run}]({url}) · the state records exactly what"
        " was applied\n"
    ),
    "outcome.cut": (
        "\n> [!NOTE]\n> This {comment} was cut to fit {forge}'s {comment} limit; the full outcome"
        " is in the {ci_summary}.\n"
    ),
    "apply.plans_heading": "\n### The plans made before applying\n\n",
    # --- why, per bot (plan/reviewed.py's Reason and hint keys) ------------------------------
    "bot.made.rotated": "{made}; also a secret changed outside git: {names}",
    "bot.made.reverted_deleted": (
        "{made}; reverted: deleted on the server outside git (the app says drift: revert)"
    ),
    "bot.made.reverted_drifted": (
        "{made}; reverted: drifted on the server in {fields}, which this change does not set"
        " (the app says drift: revert)"
    ),
    "bot.changed.gone": (
        "its manifest is no longer declared (changed after the review, by a later push or"
        " another change)"
    ),
    "bot.changed.stale": (
        "its manifest is not the one reviewed (changed after the review, by a later push or"
        " another change)"
    ),
    "bot.changed.again": (
        "its manifest is declared again (changed after the review, by a later push or another"
        " change)"
    ),
    "bot.taken": (
        "a bot with this userId is already on the server with another spec ({fields} differ):"
        " a bot the review did not know"
    ),
    "bot.deleted_outside": (
        "deleted on the server outside git: creating it again would revert a deletion nobody"
        " reviewed"
    ),
    "bot.drifted_outside": (
        "drifted on the server in {fields}, which this change does not set: applying it would"
        " revert a change nobody reviewed"
    ),
    "bot.protected": "it is protected (protect: true in state)",
    "bot.rotated": (
        "a secret changed outside git: {names} (the reference is the same, the value is not);"
        " this merge did not change the bot"
    ),
    "bot.changed_alone": "changed on the server outside git; this merge did not change it",
    "bot.deleted_alone": "deleted on the server outside git; this merge did not change it",
    "bot.unapplied": "has an unapplied change ({action}) that this merge did not review",
    "bot.hint.review_again": (
        "review it again: push to a {review} (or open one) so its plan shows the current"
        " manifest, then merge it"
    ),
    "bot.hint.adopt": (
        "declare it as the server holds it to adopt it (`provisioner export` writes its"
        " manifest), or give your bot another userId"
    ),
    "bot.hint.drift": (
        "accept the server's version (change the manifest to match it in a {review}), or revert"
        " it through the pending plan (`{command} apply --pending`); `drift: revert` in app.yaml"
        " makes merges revert such drift"
    ),
    "bot.hint.protected": (
        "set protect: false in a separate {review}, merge it, then delete the bot"
    ),
    "bot.hint.rotated": (
        "apply the rotation through the drift {issue}'s pending plan (`{command} apply --pending"
        " ISSUE`: {dispatch}, in {gate})"
    ),
    "bot.hint.drift_issue": (
        "see the drift {issue}: accept it (change the manifest in a {review}) or revert it"
        " (`{command} apply --pending ISSUE`)"
    ),
    "bot.hint.unapplied": (
        "it belongs to the review that showed it: apply that review's pending plan (`{command}"
        " apply --pending N`), or review it again in a {review}"
    ),
    # --- the pending plan (github/pending.py) -------------------------------------------------
    "pending.title.one": "## provisioner: pending plan for {count} app ({names})",
    "pending.title.other": "## provisioner: pending plan for {count} apps ({names})",
    "pending.intro.one": (
        "{why} This is what applying it would do now, planned with the live bots after the"
        " apply. Nothing here is applied until a reviewer approves it:"
    ),
    "pending.intro.other": (
        "{why} This is what applying them would do now, planned with the live bots after the"
        " apply. Nothing here is applied until a reviewer approves it:"
    ),
    "pending.how": (
        "- **apply it:** run {dispatch} with `{number}` as the number (`provisioner"
        " {command} apply --pending {number}`); {approval} is the"
        " review of exactly these plans (an app whose plan changed by then is not applied: a"
        " new pending plan is posted instead);\n- **or change git:** push the manifests that"
        " match what you want to a {review}; its merge applies as reviewed."
    ),
    "pending.footer": "\n---\nPlanned `{sha}` · [{ci_run}]({url})\n",
    "pending.why_refused": (
        "`{command} apply` of {review} {ref}{number} refused some of its changes (the outcome"
        " {comment} says which and why)."
    ),
    "pending.why_unreviewed": "Nothing of {review} {ref}{number} was applied: {error}.",
    "pending.why_changed": (
        "The pending plan on {ref}{number} no longer matched some apps when it was applied."
    ),
    # --- the drift issue (github/drift.py, github/sync.py) -----------------------------------
    "drift.issue_title": "provisioner: bots drifted from git",
    "drift.differ.one": "## {count} app differs from git",
    "drift.differ.other": "## {count} apps differ from git",
    "drift.unchecked": "## No drift found, but {count} could not be checked",
    "drift.clean": "## No drift: every app matches git",
    "drift.table_header": "| App | Drifted bots | Unmanaged bots | Pending changes | Since |",
    "drift.more": "{names} and {more} more",
    "drift.advice": (
        "Each app that differs has **two ways out**, both reviewed:\n\n- **accept the server's"
        " version:** change the manifests to match it in a {review}; its merge records"
        " what the server holds (no call where it already matches);\n- **revert to git:** a"
        " reviewer runs {dispatch} with this {issue}'s number (`provisioner {command}"
        " apply --pending <number>`, in {gate}), which applies the pending"
        " plan below exactly as this check planned it (the revert of the drift, and any change"
        " of git not applied yet); an app whose plan changed since is not applied, and a new"
        " pending plan is posted.\n\nThis {issue} is rewritten on every check and closed when"
        " nothing differs."
    ),
    "drift.could_not_check": "**Could not check:**",
    "drift.pending_heading": "\n### The pending plan (what reverting would do)\n\n",
    "drift.cut": (
        "\n> [!NOTE]\n> This table was cut to fit {forge}'s {issue} limit; the full drift report is"
        " in the {ci_summary} of the run.\n"
    ),
    "drift.footer": "\n---\nChecked {at} · [{ci_run}]({url})\n",
    "drift.closing": "No drift found by [this check]({url}): every app matches git. Closing.",
    "drift.closing.gitlab": (  # its own key: the Chinese names the issue, GitLab's is 议题
        "No drift found by [this check]({url}): every app matches git. Closing."
    ),
    # --- what the last drift run saw (github/seen.py) ----------------------------------------
    "seen.title": "What the last drift run saw",
    "seen.line": "- {app}: {seen} ({by}): {merge}",
    "seen.by": "seen by the {run}{notes}",
    "seen.run_of": "drift run of {when}",
    "seen.age.one": ", {count} day ago",
    "seen.age.other": ", {count} days ago",
    "seen.moved": "; the state has changed since",
    "seen.more": "{fields} and {more} more",
    "seen.no_record": "no drift run recorded yet",
    "seen.exists": "{bot} exists on the server",
    "seen.adopts": (
        "this merge adopts it if the server still holds exactly this spec, else refuses it"
    ),
    "seen.not_on_server": "{bot} is not on the server",
    "seen.creates": "this merge creates it",
    "seen.drifted": "{bot} drifted in {fields}",
    "seen.deletes_as_reviewed": "this merge deletes it as reviewed",
    "seen.matches": "{bot} matches the recorded state",
    "seen.merge_deletes": "this merge deletes it",
    "seen.merge_updates": "this merge updates it",
    "seen.gone": "{bot} is already gone from the server",
    "seen.forgets": "this merge forgets it from the state",
    "seen.deleted": "{bot} was deleted on the server outside git",
    "seen.creates_again": "this merge creates it again (the app says {revert})",
    "seen.will_refuse_missing": (
        "this merge will refuse it (or, if the app says {revert}, create it again)"
    ),
    "seen.sets": "the PR sets {fields}, so this merge makes it as declared",
    "seen.reverts": "this merge reverts {fields} (the app says {revert})",
    "seen.will_refuse": (
        "this merge will refuse it unless the PR sets {fields} (or the app says {revert})"
    ),
    "seen.alone_drift": "this merge leaves it alone; see the drift {issue}",
    "seen.unmanaged": "{bot} is on the server but not managed",
    "seen.alone": "this merge leaves it alone",
    # --- new secrets (forge/secrets.py) and the job summary ----------------------------------
    "secrets.new": (
        "**New secrets:** this pull request references variables the recorded state does not"
        " hold yet; add them to the apply job's secrets (the {bundle} bundle; `provisioner"
        " github secrets` lists what each app needs) before merging:"
    ),
    "secrets.new.gitlab": (
        "**New secrets:** this merge request references variables the recorded state does not"
        " hold yet; add them to the project's CI/CD variables (masked and protected, in the"
        " environments of the apply and drift jobs) before merging:"
    ),
    "summary.cut": (
        "\n> [!NOTE]\n> This summary was cut to fit GitHub's 1 MiB step-summary limit. Run"
        " `provisioner plan --format json` for everything.\n"
    ),
    "summary.no_apps": "No apps to plan.\n",
    "summary.no_drift": "No drift: every app matches git.\n",
    "summary.validation": "\n### Validation\n\n",
    # --- pull-request labels (their descriptions in the repository) ----------------------
    "label.no-changes": "provisioner: the plan changes no bot",
    "label.changes": "provisioner: the plan creates, adopts, updates or deletes bots",
    "label.delete": "provisioner: the plan deletes bots",
    "label.blocked": "provisioner: a safety rule blocks the plan",
}

TERMS: Final[dict[str, dict[str, str]]] = {
    "github": {
        "ci_run": "workflow run",
        "ci_summary": "job summary",
        "comment": "comment",
        "issue": "issue",
        "review": "pull request",
        "dispatch": "the dispatch workflow",
        "gate": "the protected environment",
        "approval": "the protected environment's approval",
    },
    "gitlab": {
        "ci_run": "pipeline job",
        "ci_summary": "plan.md artifact",
        "comment": "note",
        "issue": "issue",
        "review": "merge request",
        "dispatch": "the `apply-pending` manual job (variable `PROVISIONER_PENDING`)",
        "gate": "its protected manual job",
        "approval": "running that manual job (protected environment approvals on Premium)",
    },
}
"""Each forge's words for the placeholders of the same names (``{forge}``, ``{command}`` and
``{ref}``, its name, CLI command and review sigil, come from ``provisioner.forge.wording``)."""
