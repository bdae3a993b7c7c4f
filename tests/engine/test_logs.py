"""Logs in production are one JSON object a line, with the tenant's id, and no secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from engine.logs import JsonFormatter, configure
from engine.sip.ua import Account
from webapp.config import Config, ConfigError


def test_a_record_of_a_tenants_engine_is_json_with_its_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.engine.logs")
    logger.addHandler(handler)
    logger.propagate = False
    adapter = logging.LoggerAdapter(logger, {"tenant_id": 7, "engine": "host-1/ab"})
    account = Account("pbx.example.com", 5060, "trunk", "s3cret-password")
    try:
        raise RuntimeError("the PBX went away")
    except RuntimeError:
        adapter.exception("tenant %s: attempt failed with %r", 7, account)
    entry = json.loads(stream.getvalue())
    assert (entry["level"], entry["logger"], entry["tenant_id"], entry["engine"]) == (
        "ERROR",
        "test.engine.logs",
        7,
        "host-1/ab",
    )
    assert entry["message"].startswith("tenant 7: attempt failed")
    assert "RuntimeError: the PBX went away" in entry["exception"]
    assert "s3cret-password" not in stream.getvalue()


def test_the_format_follows_the_deployment():
    assert (
        Config(
            env="production",
            secret_key="x",
            encryption_key=Config().encryption_key,
        ).logs
        == "json"
    )
    assert Config().logs == "text" and Config(log_format="json").logs == "json"
    with pytest.raises(ConfigError, match="AUTOCALL_LOG_FORMAT"):
        Config.from_env({"AUTOCALL_LOG_FORMAT": "xml"})


def test_configure_replaces_the_root_handlers():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure("json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure("text")
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _json_records(logger_name: str, level=logging.DEBUG):
    """A JSON handler on a logger, and a function returning the records it wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def records() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    def remove() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved)

    return records, remove


def test_ids_bound_in_a_task_stay_in_that_task():
    import asyncio

    from engine import logs

    records, remove = _json_records("test.engine.logs.bind")
    logger = logging.getLogger("test.engine.logs.bind")

    async def call(attempt_id: int, call_id: str) -> None:
        logs.bind(tenant_id=3, attempt_id=attempt_id, lead_id=attempt_id * 10)
        await asyncio.sleep(0)
        logs.bind(call_id=call_id)  # the user agent adds the Call-ID when it makes one
        await asyncio.sleep(0)
        logger.warning("in the call")

    async def main() -> None:
        await asyncio.gather(call(1, "a@127.0.0.1"), call(2, "b@127.0.0.1"))
        logger.warning("outside any call")

    try:
        asyncio.run(main())
    finally:
        remove()
    got = records()
    inside = sorted(
        (r["attempt_id"], r["lead_id"], r["call_id"], r["tenant_id"])
        for r in got
        if r["message"] == "in the call"
    )
    assert inside == [(1, 10, "a@127.0.0.1", 3), (2, 20, "b@127.0.0.1", 3)]
    outside = next(r for r in got if r["message"] == "outside any call")
    assert not {"attempt_id", "lead_id", "call_id", "tenant_id"} & set(outside)


def test_a_calls_records_name_its_tenant_attempt_lead_and_sip_call_id(app, database_url, pbx):
    from tests.engine.dialing import (
        HostThread,
        add_leads,
        attempts_of,
        dialing_tenant,
        go_on_line,
        settled,
        wait_until,
    )

    peer = pbx("pbx.xml", calls=10, timeout=60, fill={"ring_ms": 100})
    tenant_id, operators = dialing_tenant(app, "Acme", peer)
    (lead_id,) = add_leads(app, tenant_id, ["+15550000010"])
    go_on_line(app, tenant_id, *operators.values())
    records, remove = _json_records("engine.dialer")
    try:
        with HostThread(database_url):
            wait_until(settled(app, tenant_id, 1), what="the attempt")
    finally:
        remove()
    (attempt,) = attempts_of(app, tenant_id)
    ended = [r for r in records() if r["message"].startswith("attempt ended")]
    assert len(ended) == 1
    record = ended[0]
    assert (record["tenant_id"], record["attempt_id"], record["lead_id"]) == (
        tenant_id,
        attempt.id,
        lead_id,
    )
    assert record["operator_id"] == attempt.operator_id
    assert record["engine"] == attempt.engine
    peer.stop()
    assert f"Call-ID: {record['call_id']}" in peer.result().messages  # the INVITE's Call-ID
    assert "password" not in json.dumps(records())
