"""The contract tests use the same app fixture as the API tests."""

from tests.api.conftest import app

__all__ = ["app"]
