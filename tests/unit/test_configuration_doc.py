"""`docs/configuration.md` says what the settings model is: every setting, its default and meaning."""

from __future__ import annotations

from bookwell_tools.settings_reference import DOC
from bookwell_tools.settings_reference import render


def test_the_configuration_reference_is_the_settings_model() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run `make configuration-doc` and commit docs/configuration.md"
