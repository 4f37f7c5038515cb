"""Broker security from settings: Faust credentials for the worker, the same as keyword
arguments for the plain aiokafka clients (topic admin, producers of the CLI, interventions
tails), so every connection of a process authenticates the same way.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from signals_stream.errors import ConfigurationError
from signals_stream.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["client_auth", "faust_credentials", "ssl_context"]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context verifying the broker (system CAs unless ``SIGNALS_BROKER_SSL_CAFILE``),
    with the client certificate for mutual TLS when one is set; None without TLS.

    Raises:
        ConfigurationError: a certificate or key file cannot be loaded.
    """
    if not settings.broker_security_protocol.endswith("SSL"):
        return None
    cafile = settings.broker_ssl_cafile
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        if settings.broker_ssl_certfile is not None:
            keyfile = settings.broker_ssl_keyfile
            context.load_cert_chain(
                str(settings.broker_ssl_certfile), str(keyfile) if keyfile else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the broker TLS files: {exc}") from exc
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """``broker_credentials`` for ``faust.App``; None for PLAINTEXT."""
    import faust  # here: the CLI's plain clients should not pay for importing Faust

    protocol = settings.broker_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.broker_sasl_password
    # With an SSL context Faust speaks SASL_SSL, without one SASL_PLAINTEXT.
    return faust.SASLCredentials(
        username=settings.broker_sasl_username,
        password=password.get_secret_value() if password is not None else None,
        ssl_context=context,
        mechanism=settings.broker_sasl_mechanism,
    )


def client_auth(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin clients."""
    protocol = settings.broker_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        password = settings.broker_sasl_password
        options |= {
            "sasl_mechanism": settings.broker_sasl_mechanism,
            "sasl_plain_username": settings.broker_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password is not None else None,
        }
    return options
