"""Catalog: bookable resources, their opening hours and prices."""
