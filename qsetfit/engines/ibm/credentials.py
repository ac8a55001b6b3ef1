"""IBM Quantum credentials for the ``ibm`` engine: a saved account or environment variables.

Look-up order: the environment (``QISKIT_IBM_TOKEN``, with ``QISKIT_IBM_INSTANCE`` and optionally
``QISKIT_IBM_CHANNEL``), then the account saved by ``QiskitRuntimeService.save_account(...)``
(``~/.qiskit/qiskit-ibm.json``). The token is never logged, written to a run directory or a ledger, and never
part of an error message or a ``repr``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)

TOKEN_VAR = "QISKIT_IBM_TOKEN"
INSTANCE_VAR = "QISKIT_IBM_INSTANCE"
CHANNEL_VAR = "QISKIT_IBM_CHANNEL"
DEFAULT_CHANNEL = "ibm_quantum_platform"

SETUP_HELP = (
    "no IBM Quantum credentials found. Either save an account once:\n"
    '    python -c "from qiskit_ibm_runtime import QiskitRuntimeService; '
    "QiskitRuntimeService.save_account(channel='ibm_quantum_platform', token='<API key>', "
    "instance='<CRN or instance name>', set_as_default=True)\"\n"
    f"or set the environment variables {TOKEN_VAR}=<API key> and {INSTANCE_VAR}=<CRN or instance name> "
    f"(optionally {CHANNEL_VAR}). Local testing needs no account: use a fake backend profile such as 'fake-torino'."
)


@dataclass(frozen=True)
class Credentials:
    """Where the account comes from; ``token`` is hidden from ``repr`` and never serialised."""

    channel: str
    instance: str | None
    source: str  # "environment" or "saved account"
    token: str | None = field(default=None, repr=False)


def from_environment(*, instance: str | None = None, channel: str | None = None) -> Credentials | None:
    """Credentials from ``QISKIT_IBM_TOKEN`` (+ instance/channel), or None when the token is not set."""
    token = os.environ.get(TOKEN_VAR, "").strip()
    if not token:
        return None
    return Credentials(
        channel=channel or os.environ.get(CHANNEL_VAR) or DEFAULT_CHANNEL,
        instance=instance or os.environ.get(INSTANCE_VAR) or None,
        source="environment",
        token=token,
    )


def runtime_service(*, instance: str | None = None, channel: str | None = None) -> Any:
    """A ``QiskitRuntimeService`` from the environment or the saved account; one clear error without either.

    Args:
        instance: the profile's instance (CRN or name); falls back to ``QISKIT_IBM_INSTANCE``, then to the
            saved account's default.
        channel: defaults to ``QISKIT_IBM_CHANNEL`` or "ibm_quantum_platform".
    """
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.accounts import AccountNotFoundError, InvalidAccountError

    creds = from_environment(instance=instance, channel=channel)
    kwargs: dict[str, Any] = {"channel": channel or os.environ.get(CHANNEL_VAR) or DEFAULT_CHANNEL}
    if creds is not None:
        kwargs.update(channel=creds.channel, token=creds.token)
    chosen = instance or os.environ.get(INSTANCE_VAR) or None
    if chosen:
        kwargs["instance"] = chosen
    source = "environment" if creds is not None else "saved account"
    if chosen:
        check_instance(chosen)
    try:
        service = qiskit_ibm_runtime.QiskitRuntimeService(**kwargs)
    except AccountNotFoundError:
        raise QSetFitError(SETUP_HELP) from None
    except Exception as exc:  # network, rejected key, bad account: one line, without the token or a traceback
        where = f"channel {kwargs['channel']!r}, instance {chosen or '(account default)'!r}"
        known = connection_error(exc, source=source, token=kwargs.get("token"))
        if known is not None:
            raise QSetFitError(known) from None
        message = _scrub(str(exc), kwargs.get("token"))
        if isinstance(exc, InvalidAccountError):
            raise QSetFitError(
                f"the {source} IBM Quantum account is invalid ({message}); " + SETUP_HELP.split(". ", 1)[1]
            ) from None
        raise QSetFitError(
            f"could not connect to IBM Quantum with the {source} credentials ({where}): {message}"
        ) from None
    logger.info(
        "IBM Quantum account from the %s (channel %s, instance %s)",
        source,
        kwargs["channel"],
        chosen or "(account default)",
    )
    return service


def _scrub(text: str, token: str | None) -> str:
    """``text`` with the token, if any, replaced by ``***``."""
    return text.replace(token, "***") if token else text


# A CRN has ten colon-separated fields; Runtime reads the region from the sixth and fails with
# "'NoneType' object has no attribute 'group'" on a shorter one, so it is checked before Runtime sees it.
CRN_FIELDS = 10
CRN_FORM = "crn:v1:bluemix:public:quantum-computing:<region>:a/<account id>:<instance id>::"
REJECTED_STATUS = (400, 401, 403)


def check_instance(instance: str) -> None:
    """Refuse an instance that starts like a CRN but is not one (a truncated copy, a stray quote)."""
    if instance.startswith("crn:") and len(instance.split(":")) != CRN_FIELDS:
        raise QSetFitError(
            f"IBM Quantum instance {instance!r} is not a complete CRN (expected {CRN_FORM}); copy the whole CRN "
            f"from the instance's page on quantum.cloud.ibm.com, or give the instance name, in {INSTANCE_VAR} or "
            "the backend profile's instance"
        )


def connection_error(exc: BaseException, *, source: str, token: str | None = None) -> str | None:
    """One line saying whether ``exc`` (anywhere in its cause chain) is a network failure or a rejected key.

    Runtime wraps both in the same ``InvalidAccountError`` ("check that you are using a valid API token"), so
    the chain is read: a ``requests`` connection error or timeout means IBM Quantum was never reached (the key
    was not checked); an HTTP 400/401/403 from IBM Cloud IAM or Runtime means the key was refused. None when
    neither is in the chain.

    Args:
        exc: what ``QiskitRuntimeService(...)`` or a call on it raised.
        source: "environment", "saved account" or "account" (either), named in the message.
        token: removed from any text quoted in the message.
    """
    import requests

    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    for link in _chain(exc):
        if isinstance(link, (requests.ConnectionError, requests.Timeout)):
            return (
                f"could not reach IBM Quantum ({_network_reason(link)}); the {source} credentials were not "
                "checked: check the network connection or proxy (HTTPS_PROXY) and try again. Local testing "
                "needs no network: use a fake backend profile such as 'fake-torino'"
            )
        status = getattr(link, "status_code", None)
        if isinstance(link, IBMNotAuthorizedError) or (_is_http_error(link) and status in REJECTED_STATUS):
            detail = _scrub(str(getattr(link, "message", None) or link), token)
            key = {"environment": f"the API key in {TOKEN_VAR}", "saved account": "the saved account's API key"}.get(
                source, "the API key"
            )
            return (
                f"IBM Quantum rejected {key} (HTTP {status or 401}: {detail}); create a new API key on "
                f"quantum.cloud.ibm.com and set {TOKEN_VAR} or save the account again"
            )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first (cycle-safe)."""
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and all(link is not s for s in seen):
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen


def _is_http_error(exc: BaseException) -> bool:
    """An HTTP error reply: IBM Cloud SDK's ``ApiException`` (IAM, global search) or Runtime's ``RequestsApiError``."""
    from ibm_cloud_sdk_core import ApiException
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    return isinstance(exc, (ApiException, RequestsApiError))


def _network_reason(exc: BaseException) -> str:
    """Host and a few words on why a ``requests`` connection failed."""
    import requests

    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or ""
    host = url.split("/")[2] if url.count("/") >= 2 else "the IBM Cloud API"
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        why = "timed out"
    elif "NameResolutionError" in text or "Name or service not known" in text or "getaddrinfo" in text:
        why = "could not resolve the host name"
    elif isinstance(exc, requests.exceptions.SSLError):
        why = "TLS handshake failed"
    elif isinstance(exc, requests.exceptions.ProxyError):
        why = "the proxy refused the connection"
    elif "refused" in text.lower():
        why = "connection refused"
    else:
        why = "no connection"
    return f"{host}: {why}"
