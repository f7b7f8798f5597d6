"""Identity: organizations, API keys, scopes."""
