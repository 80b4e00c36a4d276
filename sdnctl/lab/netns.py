"""Network namespaces and veths for the lab's data plane; every name carries the lab's tag."""

from __future__ import annotations

import subprocess

from sdnctl.errors import LabError

COMMAND_TIMEOUT = 20.0


def run(cmd: list[str], *, netns: str | None = None, check: bool = True, env: dict | None = None,
        timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a command (inside `netns` if given), bounded in time; a failure raises LabError."""
    full = ["ip", "netns", "exec", netns, *cmd] if netns else cmd
    try:
        result = subprocess.run(full, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(full)}") from exc
    if check and result.returncode != 0:
        raise LabError(f"failed ({result.returncode}): {' '.join(full)}: {result.stderr.strip()}")
    return result


def list_namespaces() -> list[str]:
    """Names of every network namespace on the machine."""
    out = run(["ip", "-o", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def add_namespace(name: str) -> None:
    """Create a namespace with its loopback up (idempotent)."""
    if name not in list_namespaces():
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_namespace(name: str) -> None:
    """Delete a namespace and with it every veth end inside it."""
    run(["ip", "netns", "delete", name], check=False)


def delete_namespaces_with_prefix(prefix: str) -> list[str]:
    """Delete every namespace whose name starts with `prefix`; return their names."""
    doomed = [name for name in list_namespaces() if name.startswith(prefix)]
    for name in doomed:
        delete_namespace(name)
    return doomed


def link_exists(netns: str, device: str) -> bool:
    return run(["ip", "-n", netns, "link", "show", "dev", device], check=False).returncode == 0


def add_veth(netns: str, device: str, peer_netns: str, peer_device: str) -> None:
    """A veth pair: `device` in `netns`, `peer_device` in `peer_netns`, both up."""
    run(["ip", "-n", netns, "link", "add", "name", device, "type", "veth",
         "peer", "name", peer_device, "netns", peer_netns])
    run(["ip", "-n", netns, "link", "set", device, "up"])
    run(["ip", "-n", peer_netns, "link", "set", peer_device, "up"])


def delete_link(netns: str, device: str) -> None:
    run(["ip", "-n", netns, "link", "del", "dev", device], check=False)


def set_address(netns: str, device: str, cidr: str | None, mac: str | None = None) -> None:
    """Replace the device's IPv4 address (none if `cidr` is None), optionally its MAC; bring it up."""
    if mac:
        run(["ip", "-n", netns, "link", "set", "dev", device, "address", mac])
    run(["ip", "-n", netns, "addr", "flush", "dev", device])
    if cidr:
        run(["ip", "-n", netns, "addr", "add", cidr, "dev", device])
    run(["ip", "-n", netns, "link", "set", "dev", device, "up"])


def add_bridge(netns: str, bridge: str) -> None:
    """A Linux bridge: the lab's shared underlay segment."""
    if not link_exists(netns, bridge):
        run(["ip", "-n", netns, "link", "add", "name", bridge, "type", "bridge"])
    run(["ip", "-n", netns, "link", "set", bridge, "up"])


def enslave(netns: str, device: str, bridge: str) -> None:
    run(["ip", "-n", netns, "link", "set", device, "master", bridge])
