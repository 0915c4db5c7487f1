"""The file backend: one JSON document per app under ``.provisioner/state/`` (:mod:`.backend`)
and its lock (:mod:`.lock`)."""
