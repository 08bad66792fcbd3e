"""Proves the `docket` command line: version and help output, exit status 2 with a
precise message for every usage or configuration error, the precedence
defaults < config file < environment < flags as printed by `docket config`, and
the environment variables and data-directory creation of `docket serve`."""
import os
import re
import socket
import stat

import requests

from conftest import free_port, run_cli
from httpio import Conn, assert_problem

SETTINGS = ["listen", "data_dir", "log_level", "tls_cert", "tls_key", "max_connections",
            "http.max_body_bytes", "http.header_timeout_ms", "http.body_timeout_ms",
            "http.idle_timeout_ms", "evlog.segment_bytes", "evlog.segment_age_ms",
            "evlog.retention_bytes", "evlog.retention_age_ms", "evlog.repair",
            "shutdown_grace_ms", "auth.jwt_secret_file", "auth.token_ttl_s", "auth.leeway_s",
            "auth.issuer", "auth.audience", "auth.external_issuer", "auth.external_audience",
            "auth.external_secret_file", "auth.password_iterations", "auth.signup",
            "audit.retention_days", "ws.allowed_origins", "ws.max_connections",
            "ws.max_connections_per_user", "ws.max_message_bytes", "ws.messages_per_second",
            "ws.ping_interval_ms", "ws.pong_timeout_ms", "ws.send_queue_bytes",
            "ws.stall_timeout_ms", "reminders.grace_ms", "notify.timeout_ms",
            "notify.retry_delays_ms", "notify.max_inflight", "notify.ca_file", "notify.allow_http",
            "smtp.host", "smtp.port", "smtp.starttls", "smtp.username", "smtp.password_file",
            "smtp.from", "push.subject"]
FLAGS = ["--config", "--listen", "--data-dir", "--log-level", "--tls-cert", "--tls-key",
         "--max-connections", "--http-max-body-bytes", "--http-header-timeout-ms",
         "--http-body-timeout-ms", "--http-idle-timeout-ms", "--evlog-segment-bytes",
         "--evlog-segment-age-ms", "--evlog-retention-bytes", "--evlog-retention-age-ms",
         "--evlog-repair", "--shutdown-grace-ms", "--auth-jwt-secret-file", "--auth-token-ttl-s",
         "--auth-leeway-s", "--auth-issuer", "--auth-audience", "--auth-external-issuer",
         "--auth-external-audience", "--auth-external-secret-file",
         "--auth-password-iterations", "--auth-signup", "--audit-retention-days",
         "--ws-allowed-origins", "--ws-max-connections", "--ws-max-connections-per-user",
         "--ws-max-message-bytes", "--ws-messages-per-second", "--ws-ping-interval-ms",
         "--ws-pong-timeout-ms", "--ws-send-queue-bytes", "--ws-stall-timeout-ms"]


def effective(result):
    """Parses `docket config` output into {key: text value}."""
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r'(\S+) = (?:"(.*)"|(-?\d+))', line)
        assert match, "not a 'key = value' line: %r" % line
        settings[match.group(1)] = match.group(2) if match.group(2) is not None \
            else int(match.group(3))
    return settings


def test_version_flag_and_command():
    for args in (["--version"], ["-V"], ["version"]):
        result = run_cli(args)
        assert result.returncode == 0, (args, result.stderr)
        assert re.fullmatch(r"docket \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout
    assert run_cli(["version", "extra"]).returncode == 2


def test_help_variants_list_every_setting():
    for args in (["--help"], ["-h"], ["help"]):
        result = run_cli(args)
        assert result.returncode == 0, (args, result.stderr)
        for command in ("serve", "config", "version", "help"):
            assert command in result.stdout
    for args in (["help", "serve"], ["serve", "--help"], ["serve", "--listen", "x", "-h"],
                 ["help", "config"], ["config", "--help"]):
        result = run_cli(args)
        assert result.returncode == 0, (args, result.stderr)
        for flag in FLAGS:
            assert flag + " " in result.stdout, (args, flag)
        for variable in ("DOCKET_CONFIG", "DOCKET_LISTEN", "DOCKET_HTTP_MAX_BODY_BYTES",
                         "DOCKET_SHUTDOWN_GRACE_MS"):
            assert variable in result.stdout
        assert "default 1048576" in result.stdout  # http.max_body_bytes default
        assert 'default "127.0.0.1:8080"' in result.stdout
    assert run_cli(["help", "version"]).returncode == 0


def test_unknown_command_exits_2():
    result = run_cli(["frobnicate"])
    assert result.returncode == 2
    assert "frobnicate" in result.stderr
    result = run_cli(["help", "frobnicate"])
    assert result.returncode == 2
    assert "frobnicate" in result.stderr


def test_unknown_flag_exits_2_naming_it():
    for command in (["serve"], ["config"], []):
        result = run_cli(command + ["--listne", "127.0.0.1:0"])
        assert result.returncode == 2, result
        assert "--listne" in result.stderr
        assert result.stdout == ""


def test_flag_errors_exit_2():
    cases = [
        (["config", "--listen"], "needs a value"),
        (["config", "stray"], "stray"),
        (["config", "--max-connections", "many"], "max_connections"),
        (["config", "--max-connections", "12abc"], "12abc"),
        (["config", "--max-connections", "0"], "max_connections"),
        (["config", "--http-header-timeout-ms", "99"], "http.header_timeout_ms"),
        (["config", "--http-max-body-bytes", "99999999999999999999"], "http.max_body_bytes"),
        (["config", "--log-level", "loud"], "log_level"),
        (["serve", "--log-level", "loud"], "log_level"),
        (["serve", "--max-connections", "-1"], "max_connections"),
    ]
    for args, needle in cases:
        result = run_cli(args)
        assert result.returncode == 2, (args, result)
        assert needle in result.stderr, (args, result.stderr)


def test_unknown_environment_variable_exits_2():
    for command in (["config"], ["serve", "--listen", "127.0.0.1:0"]):
        result = run_cli(command, env={"DOCKET_FOO": "1"})
        assert result.returncode == 2, result
        assert "DOCKET_FOO" in result.stderr
    result = run_cli(["config"], env={"DOCKET_MAX_CONNECTIONS": "lots"})
    assert result.returncode == 2
    assert "max_connections" in result.stderr and "lots" in result.stderr


def test_config_file_errors_name_key_and_line(tmp_path):
    path = tmp_path / "docket.conf"
    path.write_text("# comment\nlisten = 127.0.0.1:9\n\nfavourite_colour = blue\n")
    result = run_cli(["config", "--config", str(path)])
    assert result.returncode == 2
    assert "favourite_colour" in result.stderr and "line 4" in result.stderr, result.stderr

    path.write_text("max_connections = 10\nshutdown_grace_ms = soon\n")
    result = run_cli(["config", "--config", str(path)])
    assert result.returncode == 2
    assert "shutdown_grace_ms" in result.stderr and "line 2" in result.stderr, result.stderr

    path.write_text("listen 127.0.0.1:9\n")
    result = run_cli(["config", "--config", str(path)])
    assert result.returncode == 2
    assert "line 1" in result.stderr

    result = run_cli(["config", "--config", str(tmp_path / "missing.conf")])
    assert result.returncode == 2
    assert "missing.conf" in result.stderr

    result = run_cli(["serve", "--config", str(tmp_path / "missing.conf")])
    assert result.returncode == 2


def test_defaults():
    settings = effective(run_cli(["config"]))
    assert list(settings) == SETTINGS  # every setting, in table order
    assert settings == {
        "listen": "127.0.0.1:8080", "data_dir": "./docket-data", "log_level": "info",
        "tls_cert": "", "tls_key": "", "max_connections": 10000,
        "http.max_body_bytes": 1048576, "http.header_timeout_ms": 10000,
        "http.body_timeout_ms": 30000, "http.idle_timeout_ms": 60000,
        "evlog.segment_bytes": 64 * 1024 * 1024, "evlog.segment_age_ms": 24 * 3600 * 1000,
        "evlog.retention_bytes": 0, "evlog.retention_age_ms": 0, "evlog.repair": 0,
        "shutdown_grace_ms": 10000, "auth.jwt_secret_file": "", "auth.token_ttl_s": 86400,
        "auth.leeway_s": 60, "auth.issuer": "docket", "auth.audience": "docket",
        "auth.external_issuer": "", "auth.external_audience": "",
        "auth.external_secret_file": "", "auth.password_iterations": 600000, "auth.signup": 1,
        "audit.retention_days": 90, "ws.allowed_origins": "", "ws.max_connections": 10000,
        "ws.max_connections_per_user": 64, "ws.max_message_bytes": 65536,
        "ws.messages_per_second": 50, "ws.ping_interval_ms": 30000, "ws.pong_timeout_ms": 15000,
        "ws.send_queue_bytes": 262144, "ws.stall_timeout_ms": 60000,
        "reminders.grace_ms": 3600000, "notify.timeout_ms": 10000,
        "notify.retry_delays_ms": "1000,5000,25000", "notify.max_inflight": 256,
        "notify.ca_file": "", "notify.allow_http": 0, "smtp.host": "", "smtp.port": 587,
        "smtp.starttls": 1, "smtp.username": "", "smtp.password_file": "",
        "smtp.from": "docket@localhost", "push.subject": "mailto:docket@localhost",
    }


def test_precedence_defaults_file_environment_flags(tmp_path):
    path = tmp_path / "docket.conf"
    path.write_text(
        "# every layer sets something\n"
        "listen = 127.0.0.1:1111\n"
        "max_connections = 11\n"
        "http.max_body_bytes = 2222\n"
        "data_dir = \"/from/file\"\n"
        "   log_level = warn   \n")
    env = {"DOCKET_MAX_CONNECTIONS": "22", "DOCKET_HTTP_MAX_BODY_BYTES": "3333"}
    settings = effective(run_cli(["config", "--config", str(path),
                                  "--http-max-body-bytes", "4444"], env=env))
    assert settings["listen"] == "127.0.0.1:1111"          # file over default
    assert settings["data_dir"] == "/from/file"             # quotes stripped
    assert settings["log_level"] == "warn"                  # whitespace trimmed
    assert settings["max_connections"] == 22                # environment over file
    assert settings["http.max_body_bytes"] == 4444          # flag over environment
    assert settings["shutdown_grace_ms"] == 10000           # untouched default

    # DOCKET_CONFIG names the file too; --flag=value form works.
    env = {"DOCKET_CONFIG": str(path), "DOCKET_LISTEN": "127.0.0.1:3333"}
    settings = effective(run_cli(["config", "--shutdown-grace-ms=5"], env=env))
    assert settings["max_connections"] == 11
    assert settings["listen"] == "127.0.0.1:3333"
    assert settings["shutdown_grace_ms"] == 5

    # --config on the command line wins over DOCKET_CONFIG.
    other = tmp_path / "other.conf"
    other.write_text("max_connections = 99\n")
    settings = effective(run_cli(["config", "--config", str(other)], env={
        "DOCKET_CONFIG": str(path)}))
    assert settings["max_connections"] == 99
    assert settings["listen"] == "127.0.0.1:8080"


def test_serve_uses_environment_listen_and_data_dir(start_server, tmp_path):
    data = tmp_path / "from-env" / "nested" / "data"
    port = free_port()
    server = start_server(listen=None, data_dir=False,
                          env={"DOCKET_LISTEN": "127.0.0.1:%d" % port,
                               "DOCKET_DATA_DIR": str(data)})
    assert server.port == port
    assert "data_dir=%s" % data in server.stderr
    assert requests.get(server.base_url + "/readyz", timeout=10).status_code == 200
    assert data.is_dir()
    for directory in (data, data.parent, data.parent.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory


def test_data_dir_created_mode_0700(server):
    assert server.data_dir.is_dir()
    assert stat.S_IMODE(os.stat(server.data_dir).st_mode) == 0o700


def test_existing_data_dir_kept(start_server, tmp_path):
    data = tmp_path / "existing"
    data.mkdir(mode=0o755)
    (data / "keep.txt").write_text("x")
    start_server(data_dir=data)
    assert (data / "keep.txt").read_text() == "x"


def test_data_dir_that_is_a_file_fails_to_start(tmp_path):
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    result = run_cli(["serve", "--listen", "127.0.0.1:0", "--data-dir", str(path)])
    assert result.returncode == 1, result
    assert "data directory" in result.stderr and "level=error" in result.stderr


def test_listen_errors_fail_to_start(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli(["serve", "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", str(tmp_path / "d")])
        assert result.returncode == 1, result
        assert "cannot listen" in result.stderr and str(port) in result.stderr
    result = run_cli(["serve", "--listen", "nonsense", "--data-dir", str(tmp_path / "e")])
    assert result.returncode == 2, result  # a configuration error
    assert "nonsense" in result.stderr
    assert not (tmp_path / "e").exists()  # checked before anything is created


def test_serve_applies_config_file_then_environment(start_server):
    config = "# limits for this test\nhttp.max_body_bytes = 10\nmax_connections = 50\n"
    server = start_server(config=config)
    with Conn(server.port) as conn:
        assert_problem(conn.request("POST", "/healthz", body=b"x" * 11), 413)
    server = start_server(config=config, env={"DOCKET_HTTP_MAX_BODY_BYTES": "20"})
    with Conn(server.port) as conn:
        assert conn.request("POST", "/healthz", body=b"x" * 11).status == 405
    server = start_server("--http-max-body-bytes", "5", config=config,
                          env={"DOCKET_HTTP_MAX_BODY_BYTES": "20"})
    with Conn(server.port) as conn:
        assert_problem(conn.request("POST", "/healthz", body=b"x" * 6), 413)
