"""Settings from flags, env, a TOML file and defaults, in that order, and `config show` says which."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from clickagg import cli, config
from clickagg.config import ConfigError

SECRET = "pw-Zq9-unique"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVENTS_TOPIC", "APP_ID", "WEB_PORT", "CLICKAGG_CONFIG", "ELASTICSEARCH_PASSWORD",
                 "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD_FILE", "WINDOW_SECONDS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clickagg.toml"
    path.write_text(text)
    return path


def args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["worker", *argv])


def test_flag_beats_env_beats_file_beats_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = toml(tmp_path, 'events_topic = "from-file"\napp_id = "file-app"\nweb_port = 7001\n')
    monkeypatch.setenv("APP_ID", "env-app")
    monkeypatch.setenv("WEB_PORT", "7002")
    s, sources = config.explain(args("--config", str(path), "--web-port", "7003"))
    assert (s.events_topic, s.app_id, s.web_port, s.window_seconds) == ("from-file", "env-app", 7003, 60)
    assert sources["events_topic"] == f"file {path}"
    assert (sources["app_id"], sources["web_port"], sources["window_seconds"]) == ("env", "flag", "default")


def test_clickagg_config_names_the_file_and_the_flag_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLICKAGG_CONFIG", str(toml(tmp_path, "window_seconds = 30\n")))
    assert config.load().window_seconds == 30
    other = tmp_path / "other.toml"
    other.write_text("window_seconds = 45\n")
    assert config.load(args("--config", str(other))).window_seconds == 45


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("windw_seconds = 30\n", r"unknown setting 'windw_seconds' \(keys are lower-case setting names"),
        ("window_seconds = 'x'\n", r"file .*: WINDOW_SECONDS='x' is not a valid int"),
        ("window_seconds = 1.5\n", r"WINDOW_SECONDS must be a whole number, got 1.5"),
        ("window_seconds = true\n", r"WINDOW_SECONDS must be a int, got True"),
        ("window_seconds = [1]\n", r"window_seconds must be a single value"),
        ("window_seconds = \n", r"is not valid TOML"),
        ("reference_max_bad_ratio = 3\n", r"^REFERENCE_MAX_BAD_RATIO must be between 0 and 1"),
    ],
)
def test_a_bad_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(args("--config", str(toml(tmp_path, text))))


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^config file not found: .*nope.toml \(--config or CLICKAGG_CONFIG\)$"
    ):
        config.load(args("--config", str(tmp_path / "nope.toml")))


def test_toml_booleans_fit_text_settings(tmp_path: Path) -> None:
    s = config.load(args("--config", str(toml(tmp_path, "elasticsearch_verify_certs = false\n"))))
    assert s.elasticsearch_verify_certs == "false" and not s.verify_es_certs


def test_show_redacts_secrets_and_says_where_each_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "es-pw"
    secret.write_text(SECRET + "\n")
    path = toml(tmp_path, f'elasticsearch_username = "clickagg"\nelasticsearch_password_file = "{secret}"\n')
    monkeypatch.setenv("APP_ID", "env-app")
    assert cli.main(["config", "show", "--config", str(path), "--events-topic", "t1"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    lines = dict(line.split(" = ", 1) for line in out.splitlines())
    assert lines["elasticsearch_password"] == f'"<redacted>"  # file {path}'
    assert lines["elasticsearch_username"] == f'"clickagg"  # file {path}'
    assert lines["events_topic"] == '"t1"  # flag'
    assert lines["app_id"] == '"env-app"  # env'
    assert lines["window_seconds"] == "60  # default"
    assert lines["web_auth_token"] == '""  # default'  # unset secrets show as empty, not redacted
    assert set(lines) == {f.name for f in config.fields(config.Settings)}


def test_show_output_is_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Pasted into a file, `config show` gives back the same settings (secrets aside)."""
    odd = 'we"ird\\topic'
    assert cli.main(["config", "show", "--events-topic", odd, "--window-seconds", "30"]) == 0
    text = "\n".join(line.split("  #")[0] for line in capsys.readouterr().out.splitlines())
    s = config.load(args("--config", str(toml(tmp_path, text))))
    assert (s.events_topic, s.window_seconds) == (odd, 30)


def test_secret_file_from_env_is_named_as_the_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(SECRET)
    monkeypatch.setenv("ELASTICSEARCH_USERNAME", "u")
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD_FILE", str(secret))
    s, sources = config.explain()
    assert s.elasticsearch_password == SECRET
    assert sources["elasticsearch_password"] == "env (ELASTICSEARCH_PASSWORD_FILE)"
