"""The file backend: one JSON document per app under `.provisioner/state/`, and its lock."""
