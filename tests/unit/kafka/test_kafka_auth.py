"""Broker security settings: validation, and what Faust and the plain aiokafka clients get."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from signals_stream.errors import ConfigurationError
from signals_stream.kafka.auth import client_auth, faust_credentials, ssl_context
from signals_stream.kafka.topics import tail_consumer
from signals_stream.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
SASL = {
    "broker_security_protocol": "SASL_SSL",
    "broker_sasl_mechanism": "SCRAM-SHA-512",
    "broker_sasl_username": "svc-signals",
    "broker_sasl_password": "hunter2-secret",
}


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM), standing in for a CA and a client cert."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=signals-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = _settings()
    assert settings.broker_security_protocol == "PLAINTEXT"
    assert faust_credentials(settings) is None
    assert client_auth(settings) == {}


def test_sasl_ssl_gives_faust_and_aiokafka_the_same_scram_login() -> None:
    settings = _settings(**SASL)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    # What Faust's transport hands aiokafka for its consumer, producer and topic admin.
    faust_side = credentials_to_aiokafka_auth(credentials)
    ours = client_auth(settings)
    for options in (faust_side, ours):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == "svc-signals"
        assert options["sasl_plain_password"] == "hunter2-secret"
        context = options["ssl_context"]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_plaintext_has_no_tls() -> None:
    settings = _settings(**(SASL | {"broker_security_protocol": "SASL_PLAINTEXT"}))
    assert credentials_to_aiokafka_auth(faust_credentials(settings)) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc-signals",
        "sasl_plain_password": "hunter2-secret",
        "ssl_context": None,
    }
    assert "ssl_context" not in client_auth(settings)


def test_mutual_tls_loads_the_ca_and_the_client_certificate(
    client_cert: tuple[Path, Path],
) -> None:
    cert, key = client_cert
    settings = _settings(
        broker_security_protocol="SSL",
        broker_ssl_cafile=cert,
        broker_ssl_certfile=cert,
        broker_ssl_keyfile=key,
    )
    context = ssl_context(settings)
    assert context is not None
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "signals-test"),),)]
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"
    assert client_auth(settings)["security_protocol"] == "SSL"


def test_a_key_that_does_not_match_is_a_configuration_error(
    client_cert: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, _ = client_cert
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("not a key\n")
    settings = _settings(
        broker_security_protocol="SSL", broker_ssl_certfile=cert, broker_ssl_keyfile=not_a_key
    )
    with pytest.raises(ConfigurationError, match="broker TLS files"):
        ssl_context(settings)


async def test_the_interventions_tail_consumer_authenticates_like_the_worker() -> None:
    consumer = tail_consumer(["broker:9096"], "interventions", auth=client_auth(_settings(**SASL)))
    client = consumer._client  # not started: nothing connects
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "svc-signals"
    assert client._ssl_context is not None


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"broker_security_protocol": "SASL_SSL"}, "SIGNALS_BROKER_SASL_USERNAME"),
        ({"broker_sasl_username": "u", "broker_sasl_password": "hunter2-secret"}, "SASL_SSL"),
        ({"broker_ssl_cafile": "/no/such/ca.pem"}, "SIGNALS_BROKER_SSL_CAFILE"),
        ({"broker_ssl_cafile": __file__}, "SIGNALS_BROKER_SECURITY_PROTOCOL"),
        (
            {"broker_security_protocol": "SSL", "broker_ssl_keyfile": __file__},
            "SIGNALS_BROKER_SSL_CERTFILE",
        ),
        ({"broker_sasl_mechanism": "GSSAPI"}, "SIGNALS_BROKER_SASL_MECHANISM"),
    ],
)
def test_inconsistent_security_settings_fail_with_one_line_naming_them(
    values: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None, **values)
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert "hunter2-secret" not in message  # a password is never echoed


def test_a_wildcard_bind_advertises_a_reachable_host() -> None:
    assert _settings().advertised_web_host == "127.0.0.1"
    assert _settings(web_host="0.0.0.0").advertised_web_host == socket.gethostname()
    named = _settings(web_host="0.0.0.0", web_advertised_host="worker-2")
    assert named.advertised_web_host == "worker-2"


def test_the_worker_app_gets_the_credentials_and_its_canonical_url() -> None:
    """From the environment to ``faust.App`` (a fresh process: the app module reads it)."""
    code = (
        "import json\n"
        "from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth\n"
        "from signals_stream.worker import default_worker\n"
        "app = default_worker().app\n"
        "auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)\n"
        "print(json.dumps({'protocol': auth['security_protocol'],\n"
        "    'mechanism': auth['sasl_mechanism'], 'user': auth['sasl_plain_username'],\n"
        "    'tls': auth['ssl_context'] is not None, 'bind': app.conf.web_bind,\n"
        "    'url': str(app.conf.canonical_url)}))\n"
    )
    env = {
        **os.environ,
        "SIGNALS_BROKER_SECURITY_PROTOCOL": "SASL_SSL",
        "SIGNALS_BROKER_SASL_MECHANISM": "SCRAM-SHA-256",
        "SIGNALS_BROKER_SASL_USERNAME": "svc-signals",
        "SIGNALS_BROKER_SASL_PASSWORD": "hunter2-secret",
        "SIGNALS_WEB_HOST": "0.0.0.0",
        "SIGNALS_WEB_PORT": "6067",
        "SIGNALS_WEB_ADVERTISED_HOST": "worker-2",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "protocol": "SASL_SSL",
        "mechanism": "SCRAM-SHA-256",
        "user": "svc-signals",
        "tls": True,
        "bind": "0.0.0.0",
        "url": "http://worker-2:6067",
    }
