"""Prometheus metrics and MQTT events from a running daemon, read back like a monitoring system would."""

from __future__ import annotations

import urllib.request

from tests.integration.test_private_networks import converged, create_network, expected_ports
from tests.integration.test_events import broker  # noqa: F401 (the real mosquitto fixture)
from tests.waiting import wait_for, wait_until


def enable(lab, section: str, body: str) -> None:
    """Append a table to the lab's daemon config (before the [[pool]] tables)."""
    text = lab.config_path.read_text()
    lab.config_path.write_text(text.replace("[defaults]", f"[{section}]\n{body}\n\n[defaults]", 1))


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_metrics_describe_pools_hosts_and_tunnels(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    listen = f"127.{lab.octet}.0.1:9108"
    enable(lab, "metrics", f'listen = "{listen}"')
    make_daemon(lab)
    net_id = create_network(lab, topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, ["p1h1", "p1h2"], "mesh", None)), what="mesh")

    def scraped():
        text = scrape(f"http://{listen}/metrics")
        # The lab's dummy datapath carries no BFD packets, so its tunnels' health is unknown (never up); so is
        # that of a host not connected yet: wait for both hosts connected as well.
        return 'sdnctl_network_tunnels{network="net1",state="unknown"} 2.0' in text and all(
            f'sdnctl_host_ovsdb_connected{{host="{h}"}} 1.0' in text for h in ("p1h1", "p1h2")) and text

    text = wait_for(scraped, what="metrics with both hosts connected and both tunnels there, health unknown")
    assert 'sdnctl_pool_synced{pool="pool1"} 1.0' in text
    assert 'sdnctl_network_tunnels{network="net1",state="missing"} 0.0' in text
    assert 'sdnctl_network_error{network="net1"} 0.0' in text
    assert "sdnctl_client_certificate_days_left" in text


async def test_mqtt_carries_network_state_and_center_events(make_lab, make_daemon, broker):
    import json

    from tests.integration.test_events import PREFIX, subscribed

    lab = make_lab(pools=1, hosts=3)
    enable(lab, "mqtt", f'host = "127.0.0.1"\nport = {broker.port}\ntopic_prefix = "{PREFIX}"')
    daemon = make_daemon(lab)
    async with subscribed(broker) as received:
        net_id = create_network(lab, topology="star", center="p1h2")

        def network_state():
            messages = [json.loads(p) for t, p in received if t == f"{PREFIX}/network/{net_id}" and p]
            return messages and messages[-1]["center_name"] == "p1h2" and all(
                h["tunnels_missing"] == 0 and h["tunnels_up"] + h["tunnels_unknown"] >= 1
                for h in messages[-1]["hosts"].values()) and messages[-1]

        await wait_until(network_state, what="retained network state with its tunnels up")
        lab.host_crash("p1h2")

        def center_event():
            return [json.loads(p) for t, p in received if t == f"{PREFIX}/events/center" and json.loads(p)["old"] == "p1h2"]

        moved = await wait_until(center_event, what="a center event")
        assert moved[0]["name"] == "net1" and moved[0]["new"] in ("p1h1", "p1h3")
        assert any(t == f"{PREFIX}/status" and p == b"online" for t, p in received)
    daemon.kill(15)
    text = "".join(p.decode(errors="replace") for _, p in received)
    assert "psk" not in text and "password" not in text
