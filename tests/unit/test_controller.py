"""The daemon in process, with a fake pool client and fake switches (Faucet/kopf style): counts, not timings.

The fakes speak the interfaces the Controller uses (PoolWatcher's, HostSwitch's, FlowChannel's)
and hold their state in memory, so every assertion is on what a switch ended up holding and
how many transactions it took.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sdnctl import certs
from sdnctl.config import Config, PoolConfig
from sdnctl.core.model import ObservedPort, PortPlan
from sdnctl.daemon.controller import Controller
from sdnctl.errors import OvsdbError, XapiError
from tests.unit.test_topology import H1, H2, H3, H4, NET2, PoolBuilder, config
from tests.waiting import wait_until

BRIDGE = "xapi1"
VIF = "0b1c0c2e-8d0b-4d5e-9a57-3f2d1c0b0a0f"


class FakePool:
    """PoolWatcher's interface over fixed records: synced at once, calls recorded; `silent`: calls never return."""

    def __init__(self, records: dict, config: PoolConfig, on_change, *, silent: bool = False):
        self.config, self.name, self.records = config, config.name, records
        self.synced, self.resyncs, self.error, self.master_url = False, 0, None, config.url
        self.calls: list[tuple] = []
        self.silent = silent
        self._on_change = on_change

    async def run(self) -> None:
        self.synced, self.resyncs = True, 1
        self._on_change(self.name)
        await asyncio.Event().wait()

    async def call(self, method: str, *args):
        self.calls.append((method, *args))
        if self.silent:
            await asyncio.Event().wait()    # a master that answers nothing at all
        if method == "host.get_server_certificate":
            return "PEM of " + args[0]
        if method == "pool.certificate_list":
            return [certs.POOL_CA_NAME]
        if method == "SDN_controller.get_all":
            return ["OpaqueRef:sdn"]
        if method == "Certificate.get_all_records":
            raise XapiError("not in this XAPI", code="MESSAGE_METHOD_UNKNOWN")
        return ""

    async def close(self) -> None:
        pass


class FakeSwitch:
    """HostSwitch's interface over an in-memory OVSDB; `fail` makes every transaction fail."""

    def __init__(self, uuid: str, name: str, address: str, port: int, on_change):
        self.host_uuid, self.host_name, self.target = uuid, name, f"{address}:{port}"
        self.label = f"host {name} ({uuid})"
        self.connected, self.error_code, self.fail = True, None, False
        self.try_again = 0      # transactions to answer with python-ovs's "try again" first
        self.schema_version, self.missing_columns = "8.3.0", frozenset()
        self.ports: dict[str, ObservedPort] = {}
        self.controller_rows: dict[str, str] = {}
        self.rstp: set[str] = set()
        self.fail_mode_of: dict[str, str] = {}
        self.mark, self.mark_ours = "", False   # Open_vSwitch other_config:ipsec_skb_mark, set by sdnctl?
        self.vifs: list = []
        self.stats = {"transactions": 0, "connects": 1, "flows_added": 0, "flows_deleted": 0}
        self._on_change = on_change

    async def run(self) -> None:
        self._on_change(self.host_uuid)
        await asyncio.Event().wait()

    @property
    def version(self) -> object:
        """Never the same twice: the tests edit this switch directly, so every step reads it again."""
        return object()

    def status_error(self):
        return None

    def bridges(self):
        return {BRIDGE: [], "xenbr1": []}

    def owned_ports(self):
        return list(self.ports.values())

    def controllers(self):
        return dict(self.controller_rows)

    def rstp_bridges(self):
        return set(self.rstp)

    def vif_ports(self):
        return list(self.vifs)

    def interfaces(self):
        return []

    def fail_modes(self):
        return dict(self.fail_mode_of)

    def datapath_ids(self):
        return {}

    def xo_ports(self):
        return []

    def foreign_controllers(self):
        return {}

    def ipsec_mark(self):
        return self.mark, self.mark_ours

    def reconnect(self) -> None:
        pass

    async def apply(self, plan: PortPlan) -> None:
        if self.fail:
            raise OvsdbError(f"{self.host_name}: transaction error: refused", code="error")
        if self.try_again:
            self.try_again -= 1
            raise OvsdbError(f"{self.host_name}: transaction try again", code="try again")
        for port in plan.delete:
            self.ports.pop(port.name, None)
        for spec in plan.add + plan.modify:
            self.ports[spec.name] = ObservedPort(spec.name, spec.bridge, spec.network_id, spec.remote_host, spec.type,
                                                 tuple(sorted(spec.options.items())), ofport=len(self.ports) + 1,
                                                 bfd=spec.bfd, protected=spec.protected)
        self.controller_rows.update(plan.set_controllers)
        for bridge in plan.remove_controllers:
            self.controller_rows.pop(bridge, None)
        self.rstp = self.rstp - set(plan.disable_rstp) | set(plan.enable_rstp)
        self.fail_mode_of.update(plan.set_fail_modes)
        if plan.ipsec_mark is not None:
            self.mark, self.mark_ours = plan.ipsec_mark, bool(plan.ipsec_mark)
        self.stats["transactions"] += 1
        self._on_change(self.host_uuid)


class FakeChannel:
    """FlowChannel's interface: every switch connects at once; each sync is recorded."""

    def __init__(self, cert: str, key: str):
        self.on_connect = None
        self.syncs: list[tuple[str, frozenset]] = []

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def ensure(self, key, address, port, pem, datapath_id=None) -> None:
        pass

    async def forget(self, key) -> None:
        pass



    def connected(self, key) -> bool:
        return True

    def error(self, key):
        return None

    async def sync(self, key, flows, purge=()):
        self.syncs.append((key, frozenset(flows)))
        return len(flows), 0


class Daemon:
    """A Controller with fakes, running in this event loop."""

    def __init__(self, tmp_path: Path, records: dict, *, failing: set[str] = frozenset(), vifs=None, try_again=0,
                 silent_pools: dict[str, dict] | None = None, missing: frozenset[str] = frozenset()):
        """`records` are pool-a's; `silent_pools` (name -> records) are pools whose XAPI never answers a call."""
        (tmp_path / "pw").write_text("secret\n")
        pools = {"pool-a": records} | (silent_pools or {})
        self.config = Config(path=tmp_path / "sdnctl.toml", cert_dir=tmp_path / "certs",
                             state_dir=tmp_path / "state",
                             pools=tuple(PoolConfig(name=name, url=f"https://127.0.0.{n}", username="root",
                                                    password_file=tmp_path / "pw")
                                         for n, name in enumerate(pools, 1)))
        self.switches: dict[str, FakeSwitch] = {}
        self.channel: FakeChannel | None = None

        def make_switch(uuid, name, *args):
            switch = self.switches[uuid] = FakeSwitch(uuid, name, *args)
            switch.fail = uuid in failing
            switch.try_again = try_again
            if missing:
                switch.schema_version, switch.missing_columns = "7.0.0", missing
            switch.vifs = list((vifs or {}).get(uuid, ()))
            return switch

        def make_channel(cert, key):
            self.channel = FakeChannel(cert, key)
            return self.channel

        def make_watcher(cfg, on_change):
            return FakePool(pools[cfg.name], cfg, on_change, silent=cfg.name in (silent_pools or {}))

        self.controller = Controller(self.config, make_watcher=make_watcher, make_switch=make_switch,
                                     make_channel=make_channel)
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Daemon:
        self.task = asyncio.create_task(self.controller.run())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def mesh_records(hosts=(H1, H2, H3), **extra) -> dict:
    b = PoolBuilder("pool-a")
    net = b.network(config(topology="mesh") | extra, bridge=BRIDGE)
    for uuid in hosts:
        b.join(net, b.host(uuid))
    return b.records


def ports_of(daemon: Daemon, uuid: str) -> set[str]:
    switch = daemon.switches.get(uuid)
    return {p.remote_host for p in switch.ports.values()} if switch else set()


async def test_a_second_refresh_plans_nothing(tmp_path):
    async with Daemon(tmp_path, mesh_records()) as d:
        await wait_until(lambda: all(ports_of(d, h) == {H1, H2, H3} - {h} for h in (H1, H2, H3)),
                         what="a converged three-host mesh")
        await wait_until(lambda: all(a.dirty.is_set() is False for a in d.controller.hosts), what="idle agents")
        before = {uuid: sw.stats["transactions"] for uuid, sw in d.switches.items()}
        await d.controller.refresh()
        await wait_until(lambda: all(not a.dirty.is_set() for a in d.controller.hosts), what="idle agents again")
        assert {uuid: sw.stats["transactions"] for uuid, sw in d.switches.items()} == before
        assert before == {H1: 1, H2: 1, H3: 1}   # ports, controller row and RSTP: one transaction each


async def test_one_hosts_failing_transaction_holds_no_other_host_back(tmp_path):
    async with Daemon(tmp_path, mesh_records(), failing={H2}) as d:
        await wait_until(lambda: ports_of(d, H1) == {H2, H3} and ports_of(d, H3) == {H1, H2},
                         what="the healthy hosts converged")
        await wait_until(lambda: d.controller.hosts.get(H2).error, what="the failing host's error")
        assert ports_of(d, H2) == set()
        assert "refused" in d.controller.status()["hosts"][H2]["error"]


async def test_rule_flows_sync_on_a_host_whose_tunnel_transaction_keeps_failing(tmp_path):
    from sdnctl.core.model import VifPort

    records = mesh_records()
    records["vif"] = {"OpaqueRef:vif": {"uuid": VIF, "other_config": {"sdnctl:of-rules": json.dumps(
        [json.dumps({"allow": False, "protocol": "tcp", "port": 22, "ipRange": "", "direction": "to"})])}}}
    vif = VifPort(vif_uuid=VIF, network_uuid="net", bridge="xenbr1", ofport=5, mac="aa:bb:cc:00:00:01")
    async with Daemon(tmp_path, records, failing={H2}, vifs={H2: [vif]}) as d:
        await wait_until(lambda: d.switches.get(H2), what="H2's switch")
        d.switches[H2].controller_rows["xenbr1"] = "pssl:6653:10.0.0.2"   # a controller row from before

        def synced():
            return [flows for key, flows in d.channel.syncs if key == f"{H2}/xenbr1"]

        d.controller.hosts.get(H2).dirty.set()
        flows = (await wait_until(synced, what="a flow sync on the failing host"))[-1]
        assert any(("tcp_dst", 22) in f.match and f.action == "drop" for f in flows)
        assert d.switches[H2].stats["transactions"] == 0


async def test_an_unplugged_access_pif_on_a_live_host_is_plugged(tmp_path):
    b = PoolBuilder("pool-a")
    net = b.network(config(), bridge=BRIDGE)
    tunnel = b.join(net, b.host(H1), attached=False)
    async with Daemon(tmp_path, b.records) as d:
        pool = d.controller.watchers["pool-a"]
        plugs = await wait_until(lambda: [c for c in pool.calls if c[0] == "PIF.plug"], what="a PIF.plug call")
        assert plugs[0] == ("PIF.plug", b.records["tunnel"][tunnel]["access_PIF"])


async def test_a_try_again_commit_replans_at_once_and_is_no_error(tmp_path):
    errors = []
    async with Daemon(tmp_path, mesh_records(hosts=(H1, H2)), try_again=2) as d:
        def converged():
            errors.extend(a.error for a in d.controller.hosts if a.error)
            return ports_of(d, H1) == {H2} and ports_of(d, H2) == {H1}

        # Counted as a failure, "try again" would show as the host's error for a backoff of 0.4 s or more.
        await wait_until(converged, what="both hosts converged through two 'try again's")
        assert errors == [] and {sw.stats["transactions"] for sw in d.switches.values()} == {1}


def count_steps(daemon: Daemon) -> dict[str, int]:
    """Count every agent's steps from now on (the real step runs)."""
    steps = {}
    for agent in daemon.controller.hosts:
        steps[agent.host.uuid] = 0

        async def counted(real=agent.step, uuid=agent.host.uuid):
            steps[uuid] += 1
            return await real()

        agent.step = counted
    return steps


async def test_churn_that_changes_no_decision_wakes_no_agent_and_rebuilds_no_status(tmp_path):
    records = mesh_records()
    async with Daemon(tmp_path, records) as d:
        await wait_until(lambda: all(ports_of(d, h) == {H1, H2, H3} - {h} for h in (H1, H2, H3)), what="the mesh")
        await wait_until(lambda: not any(a.dirty.is_set() for a in d.controller.hosts), what="idle agents")
        steps = count_steps(d)
        world, networks = d.controller.world, d.controller.status()["networks"]
        d.controller.publisher.due = False
        for metrics in records["host_metrics"].values():
            metrics["memory_free"] = str(123 << 20)         # host_metrics churn: liveness unchanged
        d.controller.watchers["pool-a"]._on_change("pool-a")
        await wait_until(lambda: not d.controller._recompute.is_set(), what="the refresh of the churn")
        assert not any(a.dirty.is_set() for a in d.controller.hosts)
        assert steps == {H1: 0, H2: 0, H3: 0}
        assert not d.controller.publisher.due    # the status waits for its heartbeat
        assert d.controller.world is world and d.controller.status()["networks"] is networks   # reused, not rebuilt
        next(iter(records["host_metrics"].values()))["live"] = False    # a decision changes: H1 is dead
        d.controller.watchers["pool-a"]._on_change("pool-a")
        await wait_until(lambda: ports_of(d, H2) == {H3} and ports_of(d, H3) == {H2}, what="H1 dropped")
        assert steps[H2] >= 1 and steps[H3] >= 1
        assert d.controller.status()["networks"] != networks


async def test_the_status_file_is_the_document_as_json_whatever_was_reused(tmp_path):
    async with Daemon(tmp_path, mesh_records()) as d:
        await wait_until(lambda: all(ports_of(d, h) == {H1, H2, H3} - {h} for h in (H1, H2, H3)), what="the mesh")
        path = tmp_path / "state" / "status.json"
        for _ in range(2):      # the second time the networks section's JSON is reused
            document = d.controller.status()
            d.controller.publisher.publish(document)
            assert json.loads(path.read_text()) == json.loads(json.dumps(document))


async def test_a_full_resync_wakes_every_agent_even_with_nothing_changed(tmp_path):
    async with Daemon(tmp_path, mesh_records()) as d:
        await wait_until(lambda: all(ports_of(d, h) == {H1, H2, H3} - {h} for h in (H1, H2, H3)), what="the mesh")
        await wait_until(lambda: not any(a.dirty.is_set() for a in d.controller.hosts), what="idle agents")
        steps = count_steps(d)
        d.controller._wake(every_agent=True)
        await wait_until(lambda: all(steps.values()), what="every agent stepped")
        assert {sw.stats["transactions"] for sw in d.switches.values()} == {1}   # and planned nothing new


async def test_a_silent_pool_holds_back_no_other_pool(tmp_path):
    silent = PoolBuilder("pool-b")
    silent.join(silent.network(config(topology="mesh", private_network_uuid=NET2), bridge=BRIDGE), silent.host(H4))
    async with Daemon(tmp_path, mesh_records(hosts=(H1, H2)), silent_pools={"pool-b": silent.records}) as d:
        await wait_until(lambda: ports_of(d, H1) == {H2} and ports_of(d, H2) == {H1}, what="pool-a converged")
        pool_b = d.controller.watchers["pool-b"]
        await wait_until(lambda: pool_b.calls, what="a call to the silent pool")
        await asyncio.wait_for(d.controller.refresh(), timeout=5)   # a deadline: it awaits no XAPI call
        assert d.controller.hosts.get(H4) is None and set(d.switches) == {H1, H2}
        assert [c[0] for c in pool_b.calls] == ["pool.certificate_list"]     # one trust check, still in flight


async def test_a_mesh_has_split_horizon_and_rstp_off_where_the_switch_can(tmp_path):
    async with Daemon(tmp_path, mesh_records(hosts=(H1, H2))) as d:
        await wait_until(lambda: ports_of(d, H1) == {H2} and ports_of(d, H2) == {H1}, what="the mesh")
        switch = d.switches[H1]
        switch.rstp.add(BRIDGE)   # as an older sdnctl left it
        switch._on_change(H1)
        await wait_until(lambda: not switch.rstp, what="RSTP off")
        assert all(p.protected for sw in d.switches.values() for p in sw.ports.values())


async def test_a_schema_without_rstp_or_protected_gets_its_mesh_in_one_transaction_and_says_so(tmp_path):
    from sdnctl.core.features import PROTECTED, RSTP

    async with Daemon(tmp_path, mesh_records(hosts=(H1, H2)), missing=frozenset({RSTP, PROTECTED})) as d:
        await wait_until(lambda: ports_of(d, H1) == {H2} and ports_of(d, H2) == {H1}, what="the mesh")
        await wait_until(lambda: all(not a.dirty.is_set() for a in d.controller.hosts), what="idle agents")
        await d.controller.refresh(wake_all=True)
        await wait_until(lambda: all(not a.dirty.is_set() for a in d.controller.hosts), what="idle agents again")
        # Without the core leaving RSTP out, every step would plan it again and never be done.
        assert all(sw.rstp == set() and sw.stats["transactions"] == 1 for sw in d.switches.values())
        assert "schema 7.0.0 has no Bridge.rstp_enable" in d.controller.status()["hosts"][H1]["error"]
