"""xapi's errors as clients see them, and the one way a call ends with no answer at all."""

from __future__ import annotations

from sdnctl.errors import LabError


class XapiFailure(LabError):
    """A xapi error `[CODE, args...]`, as `XenAPI.Failure.details` shows it to clients."""

    def __init__(self, code: str, *args: object):
        self.details = [code, *map(str, args)]
        super().__init__(self.details)


class Abandoned(Exception):
    """The listener serving this call closed (host crashed, simulator stopped): send nothing."""
