"""The GitLab side of the GitOps loop (``provisioner gitlab plan|apply|drift``): a thin
adapter over the forge-neutral core (:mod:`provisioner.forge`).

- :mod:`provisioner.gitlab.client`: a small GitLab REST client (httpx, retries, pagination,
  rate limits, an internal CA) for the endpoints the loop needs, with the comment token and
  the job token; :mod:`~provisioner.gitlab.models` (typed results) and
  :mod:`~provisioner.gitlab.responses` (failure answers -> GitLabError) beside it.
- :mod:`provisioner.gitlab.ci`: the GitLab CI runner: ``CI_*`` variables, forks, log
  sections, the dotenv and Terraform reports.
- :mod:`provisioner.gitlab.sync`: the reads and writes (sticky note, the merged merge
  request and its reviewed plan, pending plans, the drift issue), each a constant number
  of calls whatever the number of apps.

See docs/gitlab.md.
"""
