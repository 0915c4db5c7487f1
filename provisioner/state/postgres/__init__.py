"""The postgres backend: one row per app in a PostgreSQL schema (psycopg 3, the ``[postgres]``
extra): :mod:`.backend`, its connections (:mod:`.store`) and its lock (:mod:`.lock`)."""
