"""The OpenFlow channel's error, one member of sdnctl's exception family."""

from __future__ import annotations

from sdnctl.errors import SdnctlError


class OpenFlowError(SdnctlError):
    """An OpenFlow connection, request or flow-mod failed; the message says which switch and why."""
