"""HTTP conventions shared by every context: the contract binding, errors, auth, pagination, ETags."""
