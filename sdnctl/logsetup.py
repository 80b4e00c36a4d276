"""The daemon's log lines: text or JSON on stderr, secrets redacted, no timestamps of its own under journald."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping

from sdnctl.ipsec import REDACTOR

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_TEXT = "%(levelname)s %(name)s: %(message)s"   # journald stamps every line itself


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (epoch seconds), level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": round(record.created, 3), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def under_journald(environ: Mapping[str, str] = os.environ, stream=sys.stderr) -> bool:
    """JOURNAL_STREAM names the device and inode of the stream journald reads (systemd.exec(5))."""
    try:
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        stat = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (device, inode)


def configure(level: str, log_format: str) -> None:
    """Set up the root logger (again, on a reload): one stderr handler that redacts secrets."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter(JOURNAL_TEXT if under_journald() else TEXT))
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
