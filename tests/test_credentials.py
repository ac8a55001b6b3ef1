"""IBM Quantum credentials: look-up precedence, one clear error without an account, and a token that never
reaches a log, a file, an error message or a repr. No test here opens a network connection.

(test_runtime.py covers the same errors end to end through ``make_engine`` on a hardware profile.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests

from qsetfit import QSetFitError
from qsetfit.engines.ibm import credentials
from qsetfit.engines.ibm.credentials import CHANNEL_VAR, INSTANCE_VAR, TOKEN_VAR

TOKEN = "tok-7f3a9c0e-never-anywhere"
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/acct:inst::"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No IBM variables, and Runtime's saved-account file pointed at an empty temporary folder."""
    from qiskit_ibm_runtime.accounts import management

    for var in (TOKEN_VAR, INSTANCE_VAR, CHANNEL_VAR, "QISKIT_IBM_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(tmp_path / ".qiskit" / "qiskit-ibm.json"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return monkeypatch


@pytest.fixture
def service_spy(clean_env):
    """QiskitRuntimeService replaced by a recorder that returns a sentinel (or raises what it is given)."""
    import qiskit_ibm_runtime

    seen: dict = {"raise": None}

    def fake(**kwargs):
        seen["kwargs"] = kwargs
        if seen["raise"] is not None:
            raise seen["raise"]
        return "service"

    clean_env.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", fake)
    return seen


def test_environment_credentials_need_a_non_blank_token(clean_env):
    assert credentials.from_environment() is None
    clean_env.setenv(TOKEN_VAR, "   ")
    assert credentials.from_environment() is None
    clean_env.setenv(TOKEN_VAR, f"  {TOKEN}\n")
    creds = credentials.from_environment()
    assert (creds.token, creds.channel, creds.instance, creds.source) == (TOKEN, "ibm_quantum_platform", None,
                                                                           "environment")
    assert TOKEN not in repr(creds) and TOKEN not in str(creds)


def test_arguments_beat_variables_beat_defaults(clean_env):
    clean_env.setenv(TOKEN_VAR, TOKEN)
    clean_env.setenv(INSTANCE_VAR, "env-instance")
    clean_env.setenv(CHANNEL_VAR, "ibm_cloud")
    creds = credentials.from_environment()
    assert (creds.instance, creds.channel) == ("env-instance", "ibm_cloud")
    creds = credentials.from_environment(instance="arg-instance", channel="ibm_quantum_platform")
    assert (creds.instance, creds.channel) == ("arg-instance", "ibm_quantum_platform")


def test_the_service_gets_the_environment_token_or_the_saved_account(service_spy, clean_env):
    assert credentials.runtime_service() == "service"
    assert service_spy["kwargs"] == {"channel": "ibm_quantum_platform"}  # no token: Runtime reads the saved account
    credentials.runtime_service(instance="profile-instance")
    assert service_spy["kwargs"] == {"channel": "ibm_quantum_platform", "instance": "profile-instance"}
    clean_env.setenv(TOKEN_VAR, TOKEN)
    clean_env.setenv(INSTANCE_VAR, "env-instance")
    credentials.runtime_service()
    assert service_spy["kwargs"] == {"channel": "ibm_quantum_platform", "token": TOKEN, "instance": "env-instance"}
    credentials.runtime_service(instance=CRN, channel="ibm_cloud")
    assert service_spy["kwargs"] == {"channel": "ibm_cloud", "token": TOKEN, "instance": CRN}


def test_no_account_anywhere_is_one_error_saying_how_to_set_one_up(clean_env):
    """Runtime itself (not a stand-in) finds no saved account and no variables."""
    with pytest.raises(QSetFitError) as info:
        credentials.runtime_service()
    message = str(info.value)
    assert message.startswith("no IBM Quantum credentials found") and "save_account" in message
    assert TOKEN_VAR in message and INSTANCE_VAR in message and "fake-torino" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_the_token_never_reaches_a_log_a_file_or_a_message(service_spy, clean_env, caplog, tmp_path, capsys):
    clean_env.setenv(TOKEN_VAR, TOKEN)
    clean_env.chdir(tmp_path)
    with caplog.at_level(logging.DEBUG):
        credentials.runtime_service(instance="inst")
        service_spy["raise"] = RuntimeError(f"server said: bad token {TOKEN}")
        with pytest.raises(QSetFitError) as info:
            credentials.runtime_service(instance="inst")
    assert "IBM Quantum account from the environment" in caplog.text  # it does log, without the token
    assert TOKEN not in caplog.text and TOKEN not in str(info.value) and "***" in str(info.value)
    assert info.value.__cause__ is None  # the original exception (holding the token) is not chained
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_an_invalid_saved_account_is_said_to_be_invalid_without_the_token(service_spy, clean_env):
    from qiskit_ibm_runtime.accounts import InvalidAccountError

    clean_env.setenv(TOKEN_VAR, TOKEN)
    service_spy["raise"] = InvalidAccountError(f"Invalid `token` value {TOKEN}")
    with pytest.raises(QSetFitError, match=r"the environment IBM Quantum account is invalid \(.*\*\*\*.*\); "
                                           r"Either save an account once") as info:
        credentials.runtime_service()
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("instance,ok", [(CRN, True), ("my-instance", True), ("crn:v1:bluemix:public", False),
                                          (CRN + ":", False)])
def test_a_truncated_crn_is_refused_before_runtime_sees_it(service_spy, instance, ok):
    if ok:
        credentials.check_instance(instance)
        return
    with pytest.raises(QSetFitError, match="is not a complete CRN"):
        credentials.runtime_service(instance=instance)
    assert "kwargs" not in service_spy


def _wrapped(inner: BaseException) -> Exception:
    """``inner`` two links down a cause/context chain, as Runtime wraps connection failures."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise ValueError("middle") from exc
    except ValueError as middle:
        try:
            raise RuntimeError("Check that you are using a valid API token") from middle
        except RuntimeError as outer:
            return outer


def test_a_network_failure_deep_in_the_chain_names_the_host_and_not_the_key():
    request = requests.Request("GET", "https://iam.cloud.ibm.com/identity/token").prepare()
    message = credentials.connection_error(_wrapped(requests.Timeout("read timed out", request=request)),
                                           source="environment")
    assert message.startswith("could not reach IBM Quantum (iam.cloud.ibm.com: timed out)")
    assert "credentials were not checked" in message and "rejected" not in message


def test_a_refused_key_is_said_to_be_the_key_with_the_token_scrubbed():
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    message = credentials.connection_error(_wrapped(IBMNotAuthorizedError(f"401 for apikey {TOKEN}")),
                                           source="saved account", token=TOKEN)
    assert message.startswith("IBM Quantum rejected the saved account's API key (HTTP 401: ")
    assert TOKEN not in message and "***" in message


def test_unrelated_errors_and_cyclic_chains_are_not_classified():
    a, b = ValueError("a"), KeyError("b")
    a.__context__, b.__context__ = b, a  # a cycle: the walk must stop
    assert credentials.connection_error(a, source="account") is None
