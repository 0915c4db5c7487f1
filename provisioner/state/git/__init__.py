"""The git backend: ``<app>.json`` on a state branch of the manifests' repository
(:mod:`.backend`), pushed by one worker (:mod:`.branch`, :mod:`.records`) through git
plumbing (:mod:`.cli`), under a leased lock record (:mod:`.lease`)."""
