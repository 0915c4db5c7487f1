"""Renderers: values -> text for people and machines. Pure functions, no printing.

- :mod:`provisioner.render.diagnostics`: validation diagnostics as text, JSON or GitHub
  workflow annotations.
- :mod:`provisioner.render.plan`: plans as text and json, and the pieces every plan
  renderer shares; :mod:`provisioner.render.markdown`: plans as markdown, and markdown cut
  to a limit (comments, issues, job summaries).
- :mod:`provisioner.render.drift`: the drift report; :mod:`provisioner.render.apply`: apply
  progress and summaries; :mod:`provisioner.render.safe`: untrusted text made safe.

Keep this package import-light: the CLI imports renderers inside command bodies.
"""
