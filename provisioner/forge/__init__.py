"""The forge-neutral core of the GitOps loop: what `github` and `gitlab` plan, apply and
drift share. Pure but for :mod:`~provisioner.forge.gather` and
:mod:`~provisioner.forge.apply` (planning and applying through the state backends); the
forge adapters (:mod:`provisioner.github`, :mod:`provisioner.gitlab`) fetch and write
comments and issues and read their runner's context.

- :mod:`~provisioner.forge.comment`: the plan comment and its hidden review record;
  :mod:`~provisioner.forge.trust`: which comments and issues to believe;
- :mod:`~provisioner.forge.outcome`: the apply outcome; :mod:`~provisioner.forge.pending`:
  pending plans; :mod:`~provisioner.forge.drift`: the drift issue and the drift record;
- :mod:`~provisioner.forge.shards`: shard results; :mod:`~provisioner.forge.gather`: the
  plans of a run; :mod:`~provisioner.forge.seen`: what the last drift run saw;
- :mod:`~provisioner.forge.apply`: the reviewed apply, bot by bot, and pending plans;
- :mod:`~provisioner.forge.wording`: the few words that differ per forge;
  :mod:`~provisioner.forge.runner`: what a CI runner provides (the runner-context protocol).
"""
