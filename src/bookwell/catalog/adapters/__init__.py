"""Catalog's adapters: SQL tables and repositories."""
