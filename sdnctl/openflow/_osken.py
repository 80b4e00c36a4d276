"""The one place os-ken is imported, in the order and with the hub it needs.

os-ken picks its hub from OSKEN_HUB_TYPE when `os_ken.lib.hub` is first imported; sdnctl needs the
native hub (plain OS threads, no eventlet, no monkey patching). And `os_ken.controller.controller`
cannot be imported first: it imports `app_manager`, which imports it back (a circular import).
"""

from __future__ import annotations

import os
import sys

if "os_ken.lib.hub" not in sys.modules:
    os.environ.setdefault("OSKEN_HUB_TYPE", "native")

from os_ken.base import app_manager  # noqa: E402  (must precede os_ken.controller.controller)
from os_ken.controller import controller, ofp_event, ofp_handler  # noqa: E402
from os_ken.controller.handler import (  # noqa: E402
    CONFIG_DISPATCHER, HANDSHAKE_DISPATCHER, set_ev_cls,
)
from os_ken.lib import hub  # noqa: E402
from os_ken.ofproto import ofproto_common, ofproto_parser  # noqa: E402
from os_ken.ofproto import ofproto_v1_3 as ofp  # noqa: E402
from os_ken.ofproto import ofproto_v1_3_parser as parser  # noqa: E402

if hub.HUB_TYPE != "native":
    raise ImportError(f"sdnctl needs os-ken's native hub, but OSKEN_HUB_TYPE={hub.HUB_TYPE!r}: unset it")

__all__ = ["app_manager", "controller", "ofp_event", "ofp_handler", "hub", "ofp", "parser", "ofproto_common",
           "ofproto_parser",
           "CONFIG_DISPATCHER", "HANDSHAKE_DISPATCHER", "set_ev_cls"]
