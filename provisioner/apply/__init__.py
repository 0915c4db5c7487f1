"""Apply: making a plan's changes through the API, recording each one in state.

- :mod:`~provisioner.apply.run`: the apply skeleton `apply` and `github apply` share
  (session, decide, show, apply, summaries, outcome), with the command's rule and printer;
- :mod:`~provisioner.apply.session`: one run over several apps (plan them all, decide, apply
  the approved ones), also what `provisioner plan` plans through;
- :mod:`~provisioner.apply.executor`: one app's changes in order, on a call pool shared by
  every app, recorded as each ends;
- :mod:`~provisioner.apply.settle`: one change to a settled outcome, reading back whatever
  is uncertain;
- :mod:`~provisioner.apply.recorder`: the state write after each successful call;
- :mod:`~provisioner.apply.results`: what an apply reports;
- :mod:`~provisioner.apply.interrupts`: Ctrl-C, SIGTERM and the stop signal.

Importing this package imports none of them.
"""

DEFAULT_CONCURRENCY = 8
"""How many at once unless told (``--concurrency``): API calls of an apply, apps planned or
refreshed, Dify integrations checked."""
