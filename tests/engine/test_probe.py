"""The admin's "test connection" and "test call", against SIPp playing the PBX."""

import asyncio

import pytest

from engine.formats import FormatError
from engine.probe import test_call as run_test_call
from engine.probe import test_connection as run_test_connection
from engine.sip.transaction import Timers
from engine.sip.ua import Account

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)


def test_connection_registers_and_says_so(pbx):
    fill = {"nonce": "n", "username": "acme", "password": "s3cret", "expires": "60"}
    peer = pbx("register.xml", fill=fill)
    account = Account("127.0.0.1", peer.port, "acme", "s3cret")
    registration = asyncio.run(run_test_connection(account, local_host="127.0.0.1", timers=FAST))
    assert peer.wait().succeeded
    assert (registration.state, registration.detail) == ("registered", "registered")


def test_call_renders_the_formats_and_transfers(pbx):
    peer = pbx("transfer_ok.xml")
    account = Account("127.0.0.1", peer.port, "acme", "s3cret")
    result = asyncio.run(
        run_test_call(
            account,
            "+79161234567",
            "104",
            dial_format="8{number}@{host}:{port}",
            refer_format="sip:{extension}@{host}",
            local_host="127.0.0.1",
            timers=FAST,
            refer_headers="Referred-By: <sip:dialer@{host}>",
        )
    )
    seen = peer.wait()
    assert seen.succeeded
    assert result["dialed_uri"] == f"sip:879161234567@127.0.0.1:{peer.port}"
    assert seen.logged("REFER-TO") == ["sip:104@127.0.0.1"]
    assert "Referred-By: <sip:dialer@127.0.0.1>" in seen.messages
    assert (result["outcome"], result["transfer_result"]) == ("answered", "succeeded")
    assert result["delays_ms"]["answer_to_refer"] < 500


def test_a_bad_format_is_refused_before_anything_is_sent():
    account = Account("127.0.0.1", 9, "acme", "s3cret")  # nothing listens: nothing is sent
    with pytest.raises(FormatError, match="Unknown macro"):
        asyncio.run(run_test_call(account, "1", "101", dial_format="{numbr}@{host}"))
    with pytest.raises(FormatError):
        asyncio.run(run_test_call(account, "1", "101", refer_format="{extension"))
