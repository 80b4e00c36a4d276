"""`network create --pif-device`: one device for every host, HOST=DEVICE for the hosts that differ."""

from __future__ import annotations

import pytest

from sdnctl.errors import ConfigError
from sdnctl.networks import CreateRequest, parse_pif_devices


@pytest.mark.parametrize(("values", "default", "overrides"), [
    (["eth1"], "eth1", ()),
    (["eth1", "p1h1=bond0"], "eth1", (("p1h1", "bond0"),)),
    (["p1h2=eth1", "p1h1=bond0"], "", (("p1h1", "bond0"), ("p1h2", "eth1"))),
], ids=["everywhere", "one-host-differs", "only-per-host"])
def test_pif_devices_parse(values, default, overrides):
    assert parse_pif_devices(values) == (default, overrides)


@pytest.mark.parametrize("values", [["eth1", "eth2"], ["p1h1=eth1", "p1h1=bond0"], ["=eth1"], ["p1h1="]],
                         ids=["two-defaults", "host-twice", "no-host", "no-device"])
def test_pif_devices_refused(values):
    with pytest.raises(ConfigError):
        parse_pif_devices(values)


def test_each_host_gets_its_override_else_the_default():
    request = CreateRequest(name="n", pools=("pool1",), pif_device="eth1", host_pif_devices=(("p1h1", "bond0"),))
    assert (request.device_of("p1h1"), request.device_of("p1h2")) == ("bond0", "eth1")
