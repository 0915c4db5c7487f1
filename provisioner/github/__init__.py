"""The GitHub side of the GitOps loop (``provisioner github plan|apply|drift``).

- :mod:`provisioner.github.client`: a small GitHub REST client (httpx, retries, pagination,
  primary and secondary rate limits) for the handful of endpoints the loop needs;
  :mod:`~provisioner.github.models` (typed results) and
  :mod:`~provisioner.github.responses` (failure answers -> GitHubError) beside it.
- :mod:`provisioner.github.actions`: the Actions runner environment: ``GITHUB_*`` variables,
  the event payload, step summary, outputs, masks, ``stop-commands``, annotations.
- :mod:`provisioner.forge.comment`: the pull-request plan comment: rendering, its hidden
  data block, parsing it back, and which comment to trust.
- :mod:`provisioner.forge.outcome`: the apply-outcome comment.
- :mod:`provisioner.forge.drift`: the drift issue body and its hidden data block.
- :mod:`provisioner.forge.shards`: merging the JSON results of shard jobs (``--shard``).
- :mod:`provisioner.github.sync`: the GitHub writes (sticky comment, reviewed plan lookup,
  apply outcome, drift issue), each a constant number of calls whatever the number of apps.

Everything but ``client`` and ``sync`` is pure: values in, strings out (the writers in
``actions`` take the paths they write to). See docs/github.md.
"""
