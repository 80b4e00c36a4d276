"""Prometheus metrics, derived at scrape time from the daemon's latest status (never from live state).

The daemon hands over a finished status dict (an atomic reference swap), so the exporter's
thread never reads structures the event loop is changing.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from sdnctl.core.status import tunnel_counts
from sdnctl.errors import ConfigError


class StatusCollector(Collector):
    """Turns the latest `Controller.status()` into metric families."""

    def __init__(self) -> None:
        self.status: dict = {}

    def collect(self) -> Iterator:
        status = self.status
        if not status:
            return
        pool_synced = GaugeMetricFamily("sdnctl_pool_synced", "1 while the pool's XAPI picture is in sync", labels=["pool"])
        resyncs = CounterMetricFamily("sdnctl_pool_resyncs", "full resyncs of the pool from XAPI", labels=["pool"])
        for pool in status.get("pools", []):
            pool_synced.add_metric([pool["name"]], float(pool["synced"]))
            resyncs.add_metric([pool["name"]], pool["resyncs"])
        yield from (pool_synced, resyncs)

        connected = GaugeMetricFamily("sdnctl_host_ovsdb_connected", "1 while the host's OVSDB is connected",
                                      labels=["host"])
        counters = {name: CounterMetricFamily(f"sdnctl_host_{name}", help_text, labels=["host"]) for name, help_text in (
            ("transactions", "OVSDB transactions committed"), ("ports_added", "tunnel ports added"),
            ("ports_deleted", "tunnel ports deleted"), ("ports_modified", "tunnel ports modified"),
            ("flows_added", "OpenFlow flows added"), ("flows_deleted", "OpenFlow flows deleted"),
            ("connects", "OVSDB (re)connections"))}
        openflow = GaugeMetricFamily("sdnctl_openflow_connected", "1 while the bridge's OpenFlow channel is up",
                                     labels=["host", "bridge"])
        for host in status.get("hosts", {}).values():
            connected.add_metric([host["name"]], float(host["connected"]))
            for name, family in counters.items():
                family.add_metric([host["name"]], host.get(name, 0))
            for bridge, state in host.get("openflow", {}).items():
                openflow.add_metric([host["name"], bridge], float(state["connected"]))
        yield from (connected, *counters.values(), openflow)

        yield from _network_families(status.get("networks", []))
        malformed = GaugeMetricFamily("sdnctl_rules_malformed", "1 per VIF or network whose rules are malformed "
                                      "(its ports forward nothing until they are fixed)", labels=["object"])
        for where in status.get("rule_errors", {}):
            malformed.add_metric([where], 1.0)
        yield malformed

        certificate = status.get("client_certificate")
        if certificate:
            yield GaugeMetricFamily("sdnctl_client_certificate_days_left", "days until the client certificate expires",
                                    value=certificate["days_left"])
        if status.get("last_commit_at"):
            yield GaugeMetricFamily("sdnctl_last_commit_timestamp_seconds", "time of the last OVSDB commit",
                                    value=status["last_commit_at"])
        mqtt = status.get("mqtt", {})
        if "connected" in mqtt:
            yield GaugeMetricFamily("sdnctl_mqtt_connected", "1 while the MQTT broker connection is up",
                                    value=float(mqtt["connected"]))
        for name in ("published", "dropped"):
            if name in mqtt:   # counters: exported as sdnctl_mqtt_<name>_total
                yield CounterMetricFamily(f"sdnctl_mqtt_{name}", f"MQTT messages {name}", value=float(mqtt[name]))


def _network_families(networks: list[dict]) -> Iterator:
    """Tunnels per network by health (up/down/unknown/missing: desired ones; stale: not desired), BFD flaps, errors."""
    tunnels = GaugeMetricFamily("sdnctl_network_tunnels", "tunnel ports by health (BFD) or stale",
                                labels=["network", "state"])
    flaps = GaugeMetricFamily("sdnctl_network_tunnel_flaps", "sum of the BFD flap_count of the network's tunnels "
                              "(OVS counts per interface; a vswitchd restart resets it)", labels=["network"])
    error = GaugeMetricFamily("sdnctl_network_error", "1 while the network's settings are malformed",
                              labels=["network"])
    for network in networks:
        all_tunnels = [t for h in network["hosts"] for t in h["tunnels"]]
        counts = {state.removeprefix("tunnels_"): count for state, count in tunnel_counts(all_tunnels).items()}
        counts["stale"] = sum(not t["desired"] for t in all_tunnels)
        for state, count in counts.items():
            tunnels.add_metric([network["name"], state], count)
        flaps.add_metric([network["name"]], sum(t.get("flap_count") or 0 for t in all_tunnels if t["desired"]))
        error.add_metric([network["name"]], float(bool(network["error"])))
    return iter((tunnels, flaps, error))


def parse_listen(listen: str) -> tuple[str, int]:
    """ "127.0.0.1:9108" -> ("127.0.0.1", 9108)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"metrics listen {listen!r}: write HOST:PORT, e.g. 127.0.0.1:9108")
    return host.strip("[]"), int(port)


class MetricsServer:
    """/metrics on `listen`, served from a daemon thread; feed it with `collector.status = ...`."""

    def __init__(self, listen: str):
        self.collector = StatusCollector()
        registry = CollectorRegistry()
        registry.register(self.collector)
        host, port = parse_listen(listen)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"metrics listen {listen!r}: cannot listen there: {exc}") from None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
