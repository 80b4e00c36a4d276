"""Prometheus metrics and MQTT events from a running daemon, read back like a monitoring system would."""

from __future__ import annotations

import urllib.request

from tests.integration.test_private_networks import converged, create_network, expected_ports
from tests.waiting import wait_for


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
        return 'sdnctl_network_tunnels{network="net1",state="up"} 2.0' in text and text

    text = wait_for(scraped, what="metrics with both tunnels up")
    assert 'sdnctl_pool_synced{pool="pool1"} 1.0' in text
    assert 'sdnctl_host_ovsdb_connected{host="p1h1"} 1.0' in text
    assert 'sdnctl_network_error{network="net1"} 0.0' in text
    assert "sdnctl_client_certificate_days_left" in text
