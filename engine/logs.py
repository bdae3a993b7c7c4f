"""Logs: text on a terminal, one JSON object a line in production (AUTOCALL_LOG_FORMAT), with
the tenant and call identifiers a record carries, so ops can follow one tenant or one call.

Secrets never reach a record: the SIP account's password is left out of its repr, the
portal logs no form data, and nothing here adds any."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

#: Identifiers passed with `extra=` (or a LoggerAdapter) that go into the JSON object.
FIELDS = ("tenant_id", "attempt_id", "lead_id", "operator_id", "call_id", "engine")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if getattr(record, name, None) is not None:
                entry[name] = getattr(record, name)
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
