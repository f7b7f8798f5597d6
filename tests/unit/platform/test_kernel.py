"""Ids, time formatting and settings."""

from __future__ import annotations

import os
import re
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from bookwell.platform.kernel.clock import rfc3339
from bookwell.platform.kernel.context import RequestContext
from bookwell.platform.kernel.context import authenticated
from bookwell.platform.kernel.context import bound
from bookwell.platform.kernel.context import current
from bookwell.platform.kernel.ids import new_id
from bookwell.platform.kernel.principal import Principal
from bookwell.settings import Settings
from bookwell.settings import SettingsProblem


def test_ids_carry_their_type_and_sort_by_creation_time() -> None:
    earlier = new_id("res", now_ms=1_700_000_000_000)
    later = new_id("res", now_ms=1_700_000_000_001)
    assert earlier < later
    assert re.fullmatch(r"res_[0-9A-HJKMNP-TV-Z]{26}", earlier)
    assert len({new_id("evt", now_ms=1) for _ in range(1000)}) == 1000
    made = [new_id("evt") for _ in range(2000)]  # many share a millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("xyz")


def test_rfc3339_is_utc_with_z() -> None:
    moment = datetime(2026, 3, 29, 3, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2026-03-29T01:30:15Z"


def test_settings_come_from_bookwell_variables() -> None:
    settings = Settings.from_env({"BOOKWELL_DATABASE_URL": "postgresql://db/x", "BOOKWELL_DB_POOL_SIZE": "9"})
    assert (settings.database_url, settings.db_pool_size) == ("postgresql://db/x", 9)


@pytest.mark.parametrize("env", ["production", "test"])
@pytest.mark.parametrize("secret", [None, "short"])
def test_outside_development_a_default_or_weak_secret_is_refused(env: str, secret: str | None) -> None:
    environ = {"BOOKWELL_ENV": env} | ({"BOOKWELL_SECRET_KEY": secret} if secret else {})
    with pytest.raises(ValidationError, match="BOOKWELL_SECRET_KEY"):
        Settings.from_env(environ)
    assert Settings.from_env({"BOOKWELL_ENV": "production", "BOOKWELL_SECRET_KEY": "k" * 40}).env == "production"


def test_a_caller_is_recorded_only_inside_a_bound_request_context() -> None:
    caller = Principal(organization_id="org_1", credential_id="key_1", scopes=frozenset())
    with pytest.raises(RuntimeError, match="outside a bound request context"):
        authenticated(caller)
    assert current().principal is None
    with bound(RequestContext(request_id="req-1")):
        authenticated(caller)
        assert (current().request_id, current().organization_id) == ("req-1", "org_1")
    assert current().principal is None, "the caller ends with its request"


def test_a_misspelt_setting_is_refused_outside_development_with_what_it_meant() -> None:
    environ = {"BOOKWELL_ENV": "test", "BOOKWELL_SECRET_KEY": "k" * 40, "BOOKWELL_DATABSE_URL": "sqlite:///x.db"}
    with pytest.raises(
        SettingsProblem, match=r"BOOKWELL_DATABSE_URL is not a setting \(did you mean BOOKWELL_DATABASE_URL\?\)"
    ):
        Settings.from_env(environ)
    fixed = {key: value for key, value in environ.items() if key != "BOOKWELL_DATABSE_URL"}
    # The tests' own variables, and what Kubernetes and Docker define for a service named bookwell.
    theirs = {"BOOKWELL_TEST_ANYTHING": "1", "BOOKWELL_PORT": "tcp://10.0.0.1:80", "BOOKWELL_SERVICE_HOST": "10.0.0.1"}
    assert Settings.from_env(fixed | theirs).env == "test"


def test_a_misspelling_is_named_when_it_also_breaks_another_setting() -> None:
    environ = {"BOOKWELL_ENV": "production", "BOOKWELL_SECRT_KEY": "k" * 40}
    with pytest.raises(SettingsProblem) as refused:
        Settings.from_env(environ)
    assert "BOOKWELL_SECRT_KEY is not a setting (did you mean BOOKWELL_SECRET_KEY?)" in str(refused.value)
    assert "BOOKWELL_SECRET_KEY must be a random value" in str(refused.value)


def test_in_development_a_misspelt_setting_is_a_warning_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bookwell.settings._WARNED", set())  # once per process: start this test afresh
    environ = {"BOOKWELL_LOG_LEVL": "DEBUG", "BOOKWELL_TEST_REQUIRE_SERVICES": "1", "BOOKWELL_BENCH_X": "1"}
    Settings.from_env(environ)
    Settings.from_env(environ)
    warned = capsys.readouterr().err.splitlines()
    assert warned == ["bookwell: warning: BOOKWELL_LOG_LEVL is not a setting (did you mean BOOKWELL_LOG_LEVEL?)"]


def _without_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own `BOOKWELL_*` settings out of the way, for tests that read the real sources."""
    for key in os.environ:
        if key.startswith("BOOKWELL_") and not key.startswith("BOOKWELL_TEST_"):
            monkeypatch.delenv(key)


def test_the_embedded_defaults_are_absolute_whatever_folder_a_command_starts_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_settings(monkeypatch)
    checkout_var = Path(__file__).resolve().parents[3] / "var"
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.data_dir == checkout_var
    assert settings.database_url == f"sqlite:///{checkout_var / 'bookwell.db'}"
    assert settings.broker_url == f"filesystem://{checkout_var / 'broker'}"
    moved = Settings.from_env({"BOOKWELL_DATA_DIR": "data"})
    assert moved.database_url == f"sqlite:///{tmp_path / 'data' / 'bookwell.db'}"
    assert Settings.from_env({"BOOKWELL_DATABASE_URL": "postgresql://db/x"}).broker_url.startswith("filesystem:///")


def test_a_dotenv_file_in_the_current_folder_fills_what_the_environment_does_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BOOKWELL_LOG_LEVEL=DEBUG\nBOOKWELL_WEB_WORKERS=3\n", encoding="utf-8")
    monkeypatch.setenv("BOOKWELL_WEB_WORKERS", "5")
    settings = Settings.from_env()
    assert (settings.log_level, settings.web_workers) == ("DEBUG", 5), "the environment wins over .env"
    assert Settings.from_env({}).log_level == "INFO", "a given environment replaces .env too"
    (tmp_path / ".env").write_text("BOOKWELL_ENV=production\nBOOKWELL_LOG_LEVL=DEBUG\n", encoding="utf-8")
    monkeypatch.setenv("BOOKWELL_SECRET_KEY", "k" * 40)
    with pytest.raises(SettingsProblem, match=r"BOOKWELL_LOG_LEVL \(in \.env\) is not a setting \(did you mean"):
        Settings.from_env()


def test_secrets_come_from_files_named_after_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "BOOKWELL_SECRET_KEY").write_text("s" * 40 + "\n", encoding="utf-8")  # as `echo` writes it
    environ = {"BOOKWELL_ENV": "production", "BOOKWELL_SECRETS_DIR": str(secrets)}
    assert Settings.from_env(environ).secret_key == "s" * 40
    (secrets / "bookwell_secret_kee").write_text("x", encoding="utf-8")
    with pytest.raises(SettingsProblem, match=r"BOOKWELL_SECRET_KEE \(a file in .*\) is not a setting"):
        Settings.from_env(environ)
    with pytest.raises(SettingsProblem, match=r"BOOKWELL_SECRETS_DIR: .* is not a folder"):
        Settings.from_env({"BOOKWELL_SECRETS_DIR": str(tmp_path / "missing")})


def test_a_name_given_in_code_that_names_no_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="not settings: databse_url"):
        Settings.from_env({}, databse_url="sqlite://")
    with pytest.raises(ValidationError, match="not settings: databse_url"):
        Settings(databse_url="sqlite://")  # type: ignore[call-arg]


def test_an_empty_variable_is_unset_and_a_lower_case_misspelling_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "BOOKWELL_DATABASE_URL").write_text("postgresql://db/from-secret", encoding="utf-8")
    (tmp_path / ".env").write_text("BOOKWELL_DATABASE_URL=postgresql://db/from-dotenv\n", encoding="utf-8")
    environ = {"BOOKWELL_DATABASE_URL": "", "BOOKWELL_SECRETS_DIR": str(secrets)}
    monkeypatch.setenv("BOOKWELL_DATABASE_URL", "")
    monkeypatch.setenv("BOOKWELL_SECRETS_DIR", str(secrets))
    assert Settings.from_env().database_url == "postgresql://db/from-secret", "a secret outranks .env"
    assert Settings.from_env(environ).database_url == "postgresql://db/from-secret"
    with pytest.raises(SettingsProblem, match="BOOKWELL_LOG_LEVL is not a setting"):
        Settings.from_env({"bookwell_log_levl": "DEBUG", "BOOKWELL_ENV": "test", "BOOKWELL_SECRET_KEY": "k" * 40})


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKWELL_WEB_WORKERS", "7")
    assert Settings().web_workers == 2
    assert Settings.from_env().web_workers == 7
