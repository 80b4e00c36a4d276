"""SDN_controller.*: at most one per pool; a pssl controller makes every host's switch listen."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import networkd
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import assert_ipv4, coerce

SSL_CONTROLLER_PORT = 6632          # xapi's default for an active ("ssl") SDN controller


@api("SDN_controller.introduce")
def introduce(ctx: Context, protocol: Any, address: Any = "", port: Any = 0) -> str:
    """Xapi_sdn_controller.introduce: address and port are optional (the datamodel's defaults "" and 0);
    pssl takes no address and port 0, ssl needs an IPv4 address and defaults to port 6632."""
    if ctx.sdn_controller() is not None:
        raise XapiFailure("OPERATION_NOT_ALLOWED", "SDN controller has been configured. Please forget it first.")
    if protocol not in ("ssl", "pssl"):
        raise XapiFailure("INVALID_VALUE", "protocol", protocol)
    address = coerce("str", address, "address")
    port = coerce("int", port, "port")
    if protocol == "pssl" and address != "":
        raise XapiFailure("INVALID_VALUE", "address", address)
    if protocol == "pssl" and port != 0:
        raise XapiFailure("INVALID_VALUE", "port", port)
    if protocol == "ssl" and address == "":
        raise XapiFailure("INVALID_VALUE", "address", address)
    if protocol == "ssl":
        assert_ipv4(address, XapiFailure("INVALID_IP_ADDRESS_SPECIFIED", "address"))
    if port != 0 and not 1 <= port <= 65535:        # Helpers.assert_is_valid_tcp_udp_port
        raise XapiFailure("INVALID_VALUE", "port", port)
    tcp_port = SSL_CONTROLLER_PORT if protocol == "ssl" and port == 0 else port
    controller = ctx.store.create("SDN_controller", protocol=protocol, address=address, port=tcp_port)
    networkd.controller_changed(ctx)
    return controller


@api("SDN_controller.forget")
def forget(ctx: Context, controller: Any) -> None:
    """Xapi_sdn_controller.forget: every host's switch is reset and stops listening."""
    ctx.store.record("SDN_controller", controller)
    ctx.store.delete(controller)
    networkd.controller_changed(ctx)
