"""Bookwell: a booking and payments API on Flask."""
