"""Writing manifests: live bots → manifest files (``export``, :mod:`.bots`), YAML round trips
that keep a user's layout (:mod:`.roundtrip`), new app folders and the published schemas
(``init``, ``schema``: :mod:`.scaffold`)."""
