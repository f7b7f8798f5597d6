"""Booking: holds, bookings, their state machine, availability."""
