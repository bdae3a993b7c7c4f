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
        "ERROR", "test.engine.logs", 7, "host-1/ab")  # fmt: skip
    assert entry["message"].startswith("tenant 7: attempt failed")
    assert "RuntimeError: the PBX went away" in entry["exception"]
    assert "s3cret-password" not in stream.getvalue()


def test_the_format_follows_the_deployment():
    assert Config(env="production", secret_key="x", encryption_key=Config().encryption_key,
                  ).logs == "json"  # fmt: skip
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
