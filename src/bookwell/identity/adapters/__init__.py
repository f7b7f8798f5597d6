"""Identity's adapters: SQL tables and repositories."""
