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
    "    python -c \"from qiskit_ibm_runtime import QiskitRuntimeService; "
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
    try:
        service = qiskit_ibm_runtime.QiskitRuntimeService(**kwargs)
    except AccountNotFoundError:
        raise QSetFitError(SETUP_HELP) from None
    except InvalidAccountError as exc:
        raise QSetFitError(f"the {source} IBM Quantum account is invalid ({_scrub(str(exc), kwargs.get('token'))}); "
                           + SETUP_HELP.split('. ', 1)[1]) from None
    except Exception as exc:  # network or authentication: report without the token or a traceback
        message = _scrub(str(exc), kwargs.get("token"))
        raise QSetFitError(
            f"could not connect to IBM Quantum with the {source} credentials "
            f"(channel {kwargs['channel']!r}, instance {chosen or '(account default)'!r}): {message}"
        ) from None
    logger.info("IBM Quantum account from the %s (channel %s, instance %s)", source, kwargs["channel"],
                chosen or "(account default)")
    return service


def _scrub(text: str, token: str | None) -> str:
    """``text`` with the token, if any, replaced by ``***``."""
    return text.replace(token, "***") if token else text
