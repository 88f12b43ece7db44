"""`duckrec serve`: a PostgreSQL wire-protocol server on the latest published build, read-only."""
