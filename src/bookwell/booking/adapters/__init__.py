"""Booking's adapters: SQL tables and repositories, and the catalog seen through its facade."""
