"""The OpenFlow channel: os-ken in a daemon thread, one pinned mutual-TLS connection per switch."""

from sdnctl.openflow.channel import FlowChannel
from sdnctl.errors import OpenFlowError

__all__ = ["FlowChannel", "OpenFlowError"]
