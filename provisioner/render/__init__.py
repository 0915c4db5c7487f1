"""Renderers: values -> text for people and machines. Pure functions, no printing.

- :mod:`provisioner.render.diagnostics`: validation diagnostics as text, JSON or GitHub
  workflow annotations.
- ``provisioner.render.plan`` (plan output) lives next to it.

Keep this package import-light: the CLI imports renderers inside command bodies.
"""
