"""Logs: text on a terminal, one JSON object a line in production (AUTOCALL_LOG_FORMAT), with
the tenant and call identifiers a record carries, so ops can follow one tenant or one call.

Secrets never reach a record: the SIP account's password is left out of its repr, the
portal logs no form data, and nothing here adds any."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

#: Identifiers passed with `extra=` (or a LoggerAdapter), or bound to the running task with
#: `bind()`, that go into the JSON object.
FIELDS = ("tenant_id", "attempt_id", "lead_id", "operator_id", "call_id", "engine")

#: The identifiers of what the current asyncio task (or thread) works on: each call of the
#: engine runs in a task of its own, so every record logged while it runs, in the dialer or
#: in the SIP stack, names its tenant, attempt, lead and SIP Call-ID.
_bound: ContextVar[dict[str, object]] = ContextVar("autocall_log_ids", default={})  # noqa: B039


def bind(**ids: object) -> None:
    """Add identifiers to every later record of the current task (a copy: other tasks, and
    the task that started this one, do not see them)."""
    _bound.set({**_bound.get(), **ids})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _bound.get()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = context.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send every log record to standard error as `text` or `json`."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
