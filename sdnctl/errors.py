"""The one exception family of sdnctl: each error says what, which value, and the fix.

Control flow tests an error's `code`, never a substring of its message; a retryable error
says when to try again (`retry_in`, seconds, from `sdnctl.retry`'s schedule).
"""

from __future__ import annotations

from collections.abc import Iterable


class SdnctlError(Exception):
    """Base of every error sdnctl raises on purpose."""

    def __init__(self, message: str, *, code: str | None = None, retry_in: float | None = None):
        super().__init__(message)
        self.code = code
        self.retry_in = retry_in


class ConfigError(SdnctlError):
    """The configuration file or a command-line value is wrong."""


class XapiError(SdnctlError):
    """A XAPI call failed in a way the caller must handle.

    `details` are XAPI's failure details (`[CODE, args...]`), empty when XAPI did not answer;
    `code` is details[0], or TRANSPORT when the connection, HTTP or XML-RPC failed.
    """

    TRANSPORT = "TRANSPORT"

    def __init__(self, message: str, *, code: str | None = None, details: Iterable[object] = (),
                 retry_in: float | None = None):
        self.details: tuple[str, ...] = tuple(str(d) for d in details)
        super().__init__(message, code=code or (self.details[0] if self.details else None), retry_in=retry_in)


class OvsdbError(SdnctlError):
    """An OVSDB connection or transaction failed."""


class RuleError(SdnctlError):
    """A traffic rule is malformed."""


class LabError(SdnctlError):
    """The lab could not be started, driven or stopped."""


class CertError(SdnctlError):
    """A certificate or key is missing, invalid, expired or exposed."""


class OpenFlowError(SdnctlError):
    """An OpenFlow connection, request or flow-mod failed; the message says which switch and why."""
