"""Settings come from flags, then the environment, then a TOML file, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketplace.config import ConfigError, Settings, load_settings


def test_defaults_run_in_memory_with_the_console_mailer() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.transport_url == "memory://"
    assert settings.mailer == "console"


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    config = tmp_path / "marketplace.toml"
    config.write_text('transport_url = "amqp://file/"\nmailer = "recording"\nkdf_cost = 1024\n')
    environ = {"MARKETPLACE_CONFIG": str(config), "MARKETPLACE_TRANSPORT_URL": "amqp://env/"}
    assert load_settings(environ=environ).transport_url == "amqp://env/"
    assert load_settings({"transport_url": "amqp://flag/"}, environ=environ).transport_url == "amqp://flag/"
    settings = load_settings(environ=environ)
    assert settings.mailer == "recording"
    assert settings.kdf_cost == 1024


def test_a_flag_left_unset_does_not_hide_the_environment() -> None:
    settings = load_settings({"transport_url": None}, environ={"MARKETPLACE_TRANSPORT_URL": "amqp://env/"})
    assert settings.transport_url == "amqp://env/"


def test_the_config_file_can_be_named_directly(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text('prefix = "staging."\n')
    assert load_settings(environ={}, config_file=str(config)).prefix == "staging."


def test_environment_values_are_converted_to_their_types() -> None:
    environ = {
        "MARKETPLACE_SMTP_PORT": "2525",
        "MARKETPLACE_SMTP_STARTTLS": "yes",
        "MARKETPLACE_REQUEST_TIMEOUT": "2.5",
    }
    settings = load_settings(environ=environ)
    assert (settings.smtp_port, settings.smtp_starttls, settings.request_timeout) == (2525, True, 2.5)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MARKETPLACE_SMTP_PORT": "twenty-five"}, "MARKETPLACE_SMTP_PORT"),
        ({"MARKETPLACE_SMTP_STARTTLS": "maybe"}, "MARKETPLACE_SMTP_STARTTLS"),
        ({"MARKETPLACE_MAILER": "pigeon"}, "mailer"),
        ({"MARKETPLACE_KDF_COST": "1"}, "kdf_cost"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=environ)


def test_an_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "marketplace.toml"
    config.write_text('transport = "amqp://x/"\n')
    with pytest.raises(ConfigError, match="unknown settings transport"):
        load_settings(environ={}, config_file=str(config))


def test_a_file_that_is_not_toml_is_refused_with_its_name(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("transport_url = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(environ={}, config_file=str(config))


def test_describing_settings_masks_the_broker_password() -> None:
    settings = Settings(transport_url="amqp://user:s3cret@broker:5672/%2F", secret_key="k" * 40)
    assert "s3cret" not in settings.describe()
    assert "k" * 40 not in repr(settings)
