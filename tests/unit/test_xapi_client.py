"""XapiClient and PoolWatcher against the lab's XAPI simulator (real XML-RPC over loopback, no switches).

Each test's pool listens on its own loopback subnet and port, so concurrent runs don't collide.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdnctl.config import PoolConfig
from sdnctl.errors import OvsdbError, SdnctlError, XapiError
from sdnctl.lab.xapi import PoolSimulator
from sdnctl.core.candidates import login_order
from sdnctl.xapi import session, trust
from sdnctl.xapi.client import XapiClient
from sdnctl.xapi.watcher import EVENT_TIMEOUT, PoolWatcher
from tests.waiting import wait_until

PASSWORD = "client-secret"
PORT = 20000 + os.getpid() % 20000
_subnets = itertools.count(os.getpid())


@dataclass
class Pool:
    sim: PoolSimulator
    hosts: list[str]
    addresses: list[str]
    password_file: Path

    def url(self, index: int = 0) -> str:
        return f"http://{self.addresses[index]}:{PORT}/"

    def config(self, index: int = 0, password_file: Path | None = None) -> PoolConfig:
        return PoolConfig(name="p", url=self.url(index), username="root",
                          password_file=password_file or self.password_file, tls_verify=False)


@pytest.fixture
def pool(tmp_path) -> Pool:
    """A two-host pool on a fresh 127.76.N subnet; stopped after the test."""
    subnet = f"127.76.{next(_subnets) % 250 + 1}"
    sim = PoolSimulator(f"pool-{subnet}", password=PASSWORD, http_port=PORT, https_port=PORT + 1)
    addresses = [f"{subnet}.1", f"{subnet}.2"]
    hosts = [sim.add_host(None, name=f"h{i}", address=a, pifs={"eth1": None}) for i, a in enumerate(addresses, 1)]
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    sim.start()
    try:
        yield Pool(sim, hosts, addresses, password_file)
    finally:
        sim.stop()


@pytest.fixture
def make_client() -> Callable[..., XapiClient]:
    clients: list[XapiClient] = []

    def make(config: PoolConfig, **kwargs) -> XapiClient:
        clients.append(XapiClient(config, timeout=5.0, **kwargs))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize(("error", "code", "details"), [
    (XapiError("m", details=["HOST_IS_SLAVE", "10.0.0.1"]), "HOST_IS_SLAVE", ("HOST_IS_SLAVE", "10.0.0.1")),
    (XapiError("m", code=XapiError.TRANSPORT), "TRANSPORT", ()),
    (XapiError("m"), None, ()),
    (OvsdbError("m", code="PIN_MISMATCH"), "PIN_MISMATCH", None),
], ids=["xapi-details", "transport", "no-code", "ovsdb"])
def test_errors_carry_their_code(error, code, details):
    assert isinstance(error, SdnctlError) and error.code == code and str(error) == "m" and error.retry_in is None
    assert getattr(error, "details", None) == details


async def test_trust_falls_back_to_the_old_verb_on_its_code_only():
    seen: list[str] = []

    def fake(unknown: str):
        async def call(method, *args):
            seen.append(method)
            if method == "pool.install_ca_certificate":
                # The words mention the old verb's code either way: only `code` may decide.
                raise XapiError("pool p: failed; MESSAGE_METHOD_UNKNOWN?", details=[unknown, method])
        return call

    await trust._install(fake("MESSAGE_METHOD_UNKNOWN"), "pem")
    assert seen == ["pool.install_ca_certificate", "pool.certificate_install"]
    with pytest.raises(XapiError):
        await trust._install(fake("PERMISSION_DENIED"), "pem")


def test_a_failure_carries_xapis_code_and_details(pool, make_client):
    client = make_client(pool.config())
    assert len(client.call("pool.get_all")) == 1
    with pytest.raises(XapiError) as caught:
        client.call("VIF.get_by_uuid", "no-such-vif")
    assert caught.value.code == "UUID_INVALID" and caught.value.details[0] == "UUID_INVALID"
    assert "no-such-vif" in caught.value.details and caught.value.retry_in is None
    assert str(caught.value).startswith("pool p: VIF.get_by_uuid failed: ")


def test_login_at_a_slave_follows_host_is_slave(pool, make_client):
    client = make_client(pool.config(index=1))
    client.call("pool.get_all")
    assert client.master_url == pool.url(0)


def test_a_refused_password_is_not_retried(pool, make_client, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it")
    client = make_client(pool.config(password_file=wrong))
    with pytest.raises(XapiError) as caught:
        client.call("pool.get_all")
    assert caught.value.code == "SESSION_AUTHENTICATION_FAILED" and caught.value.retry_in is None
    assert str(wrong) in str(caught.value)


def test_a_master_change_is_followed_by_one_new_login(pool, make_client):
    client = make_client(pool.config())
    client.call("pool.get_all")
    before = client.handle
    pool.sim.set_master(pool.hosts[1])
    assert client.call("pool.get_master", client.call("pool.get_all")[0]) == pool.hosts[1]
    assert client.master_url == pool.url(1) and client.handle != before


def test_a_restarted_xapi_gets_a_new_session(pool, make_client):
    client = make_client(pool.config())
    client.call("pool.get_all")
    before = client.handle
    pool.sim.restart()
    client.call("pool.get_all")
    assert client.handle not in (None, before)


def test_an_unreachable_pool_is_transport_with_a_growing_retry_that_resets_on_success(pool, make_client):
    client = make_client(pool.config())
    client.call("pool.get_all")
    pool.sim.stop()
    waits = []
    for _ in range(2):
        with pytest.raises(XapiError) as caught:
            client.call("pool.get_all")
        assert caught.value.code == XapiError.TRANSPORT and caught.value.details == ()
        assert "cannot reach XAPI at " + pool.url(0) in str(caught.value)
        waits.append(caught.value.retry_in)
    assert 0.4 <= waits[0] <= 0.6 and 0.8 <= waits[1] <= 1.2, waits
    pool.sim.start()
    client.call("pool.get_all")           # logs in again by itself
    pool.sim.stop()
    with pytest.raises(XapiError) as caught:
        client.call("pool.get_all")
    assert 0.4 <= caught.value.retry_in <= 0.6


def test_a_dead_master_is_passed_over_for_the_known_hosts(pool, make_client):
    pool.sim.set_master(pool.hosts[1])
    pool.sim.crash_host(pool.hosts[0])     # the configured URL no longer answers
    alone = make_client(pool.config())
    with pytest.raises(XapiError) as caught:
        alone.call("pool.get_all")
    assert caught.value.code == XapiError.TRANSPORT
    client = make_client(pool.config(), known_hosts=lambda: [pool.addresses[1]])
    client.call("pool.get_all")
    assert client.master_url == pool.url(1)


def test_a_closed_client_refuses_calls_until_it_logs_in_again(pool, make_client):
    client = make_client(pool.config())
    client.call("pool.get_all")
    client.close()
    with pytest.raises(XapiError) as caught:
        client.call("pool.get_all")
    assert caught.value.code == "CLOSED"
    client.login()
    client.call("pool.get_all")


async def test_acall_serialises_concurrent_callers(pool, make_client):
    client = make_client(pool.config())
    active, most = 0, 0
    call = client.call

    def counting(method, *args):
        nonlocal active, most
        active += 1
        most = max(most, active)
        try:
            return call(method, *args)
        finally:
            active -= 1

    client.call = counting
    results = await asyncio.gather(*(client.acall("host.get_all") for _ in range(8)))
    assert all(sorted(r) == sorted(pool.hosts) for r in results) and most == 1


async def test_watcher_mirrors_the_pool_and_its_call_raises_codes(pool):
    changes: list[str] = []
    watcher = PoolWatcher(pool.config(index=1), changes.append)
    task = asyncio.create_task(watcher.run())
    try:
        await wait_until(lambda: watcher.synced, timeout=10, what="the first sync")
        assert set(watcher.records["host"]) == set(pool.hosts) and watcher.master_url == pool.url(0)
        with pytest.raises(XapiError) as caught:
            await watcher.call("VIF.get_by_uuid", "no-such-vif")
        assert caught.value.code == "UUID_INVALID"
        pool.sim.stop()
        await wait_until(lambda: not watcher.synced and watcher.error, timeout=10, what="the lost pool")
        assert "cannot reach XAPI" in watcher.error or "event.from failed" in watcher.error, watcher.error
        pool.sim.start()
        await wait_until(lambda: watcher.synced and watcher.resyncs == 2, timeout=15, what="the resync")
        assert watcher.error is None and pool.sim.master_ref in watcher.records["host"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.close()


@pytest.mark.parametrize(("url", "address", "expected"), [
    ("https://10.0.0.1", "fd00::10", "https://[fd00::10]"),
    ("https://[fd00::1]:8443/", "fd00::10", "https://[fd00::10]:8443/"),
    ("http://10.0.0.1:80/", "[fd00::10]", "http://[fd00::10]:80/"),
    ("https://10.0.0.1/", "10.0.0.2", "https://10.0.0.2/"),
    ("https://[fd00::1]", "xcp-host-2.example", "https://xcp-host-2.example"),
], ids=["ipv6", "ipv6-port-kept", "bracketed-already", "ipv4", "name"])
def test_host_urls_bracket_ipv6(url, address, expected):
    built = session.host_url(url, address)
    assert built == expected
    assert urllib.parse.urlsplit(built).hostname == address.strip("[]")


@pytest.mark.parametrize(("unreachable", "expected"), [
    (False, ["https://m", "https://conf", "https://a", "https://b"]),
    (True, ["https://conf", "https://a", "https://b", "https://m"]),
], ids=["master-first", "after-a-transport-failure-master-last"])
def test_login_order(unreachable, expected):
    members = ["https://a", "https://m", "https://b", "https://a"]
    assert login_order("https://m", "https://conf", members, master_unreachable=unreachable) == expected


def test_connect_and_read_have_their_own_timeouts(pool):
    transport = session._Transport(https=False, context=session._tls_context(pool.config()), connect_timeout=1.5,
                                   read_timeout=42.0, fingerprint=None)
    conn = transport.make_connection(f"{pool.addresses[0]}:{PORT}")
    seen = []
    create = conn._create_connection
    conn._create_connection = lambda address, timeout, *rest: seen.append(timeout) or create(address, timeout, *rest)
    conn.connect()
    try:
        assert seen == [1.5] and conn.sock.gettimeout() == 42.0
        transport.shorten(session.LOGOUT_TIMEOUT)   # a logout waits no longer than this, on the open socket too
        assert conn.sock.gettimeout() == session.LOGOUT_TIMEOUT
    finally:
        conn.close()


def test_session_invalid_reaches_the_caller_and_call_logs_in_again(pool, make_client):
    client = make_client(pool.config())
    client.call("pool.get_all")
    before = client.handle
    pool.sim.restart()
    with pytest.raises(XapiError) as caught:
        client.call_once("pool.get_all")      # XenAPI would have logged in again silently
    assert caught.value.code == "SESSION_INVALID"
    client.call("pool.get_all")
    assert client.handle not in (None, before)


def test_after_a_dead_master_a_slave_naming_it_is_passed_over_and_it_is_tried_last(tmp_path):
    subnet = f"127.76.{next(_subnets) % 250 + 1}"
    sim = PoolSimulator(f"pool-{subnet}", password=PASSWORD, http_port=PORT, https_port=PORT + 1)
    addresses = [f"{subnet}.{i}" for i in (1, 2, 3)]
    hosts = [sim.add_host(None, name=f"h{i}", address=a, pifs={}) for i, a in enumerate(addresses, 1)]
    (tmp_path / "pw").write_text(PASSWORD)
    config = PoolConfig(name="p", url=f"http://{addresses[0]}:{PORT}/", username="root",
                        password_file=tmp_path / "pw", tls_verify=False)
    client = XapiClient(config, timeout=5.0, known_hosts=lambda: addresses)
    sim.start()
    try:
        client.call("pool.get_all")
        sim.crash_host(hosts[0])                # the master stops answering; h2 and h3 still name it
        with pytest.raises(XapiError) as caught:
            client.call("pool.get_all")
        urls = [f"http://{a}:{PORT}/" for a in addresses]
        assert caught.value.code == XapiError.TRANSPORT
        assert f"cannot reach XAPI at {urls[1]}, {urls[2]}, {urls[0]}:" in str(caught.value)   # each once
        assert client.candidate_urls() == [urls[1], urls[2], urls[0]]
    finally:
        client.close()
        sim.stop()


async def test_a_restarted_xapi_is_resynced_before_the_next_long_poll_returns(pool):
    watcher = PoolWatcher(pool.config(), lambda name: None)
    task = asyncio.create_task(watcher.run())
    try:
        await wait_until(lambda: watcher.synced, timeout=10, what="the first sync")
        pool.sim.restart()                      # sessions are not persisted; the old token may still be accepted
        # A deadline under the long-poll: the resync must not wait for event.from to return by itself.
        await wait_until(lambda: watcher.resyncs == 2, timeout=EVENT_TIMEOUT - 1, what="the resync")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.close()


def test_the_cli_tries_the_master_the_daemon_last_found_first(pool, tmp_path):
    from sdnctl.config import Config
    from sdnctl.networks import Pools

    state = tmp_path / "state"
    state.mkdir()
    status = state / "status.json"
    status.write_text(json.dumps({"pools": [{"name": "p", "master_url": pool.url(1)}]}))
    status.chmod(0o644)
    config = Config(path=tmp_path / "sdnctl.toml", cert_dir=tmp_path / "certs", state_dir=state,
                    pools=(pool.config(),))
    assert Pools(config).clients["p"].candidate_urls() == [pool.url(1), pool.url(0)]
    status.chmod(0o666)     # anyone could point the CLI (and its password) elsewhere: ignored
    assert Pools(config).clients["p"].candidate_urls() == [pool.url(0)]
