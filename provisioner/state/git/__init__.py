"""The git backend: `<app>.json` on a state branch of the manifests' repository."""
