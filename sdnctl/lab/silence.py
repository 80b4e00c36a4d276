"""A silently dead host: nftables drops every packet from or to its addresses, so nothing is refused.

A powered-off or cut-off host answers nothing: connects and reads hang, with no RST. The lab's table
`inet <tag>` (root namespace) holds the set of silenced loopback addresses and drops their traffic in
the output hook, where all loopback traffic passes in both directions, before conntrack (already open
connections hang too). In data-plane mode the host's own namespace gets a table that drops everything.
Only the lab's own addresses and namespaces are touched; `remove` deletes the table with the lab.
"""

from __future__ import annotations

import subprocess

from sdnctl.errors import LabError
from sdnctl.lab import netns

SET = "silenced"


def _nft(script: str, *, netns_name: str | None = None) -> None:
    cmd = ["nft", "-f", "-"]
    full = ["ip", "netns", "exec", netns_name, *cmd] if netns_name else cmd
    try:
        result = subprocess.run(full, input=script, capture_output=True, text=True, timeout=netns.COMMAND_TIMEOUT)
    except FileNotFoundError:
        raise LabError("a silent crash needs nftables (`apt-get install nftables`, see scripts/bootstrap.sh)") from None
    if result.returncode != 0:
        raise LabError(f"nft failed ({result.returncode}) on {script!r}: {result.stderr.strip()}")


def _table_exists(tag: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", tag], capture_output=True,
                          timeout=netns.COMMAND_TIMEOUT).returncode == 0


def silence(tag: str, address: str, netns_name: str | None) -> None:
    """Drop every packet from or to `address` (and, in data-plane mode, in and out of the host's namespace)."""
    if not _table_exists(tag):
        _nft(f"""table inet {tag} {{
  set {SET} {{ type ipv4_addr; }}
  chain output {{
    type filter hook output priority raw - 10; policy accept;
    ip daddr @{SET} drop
    ip saddr @{SET} drop
  }}
}}
""")
    _nft(f"add element inet {tag} {SET} {{ {address} }}\n")
    if netns_name:
        _nft(f"""table inet {tag} {{
  chain input {{ type filter hook input priority raw - 10; policy drop; }}
  chain output {{ type filter hook output priority raw - 10; policy drop; }}
}}
""", netns_name=netns_name)


def unsilence(tag: str, address: str, netns_name: str | None) -> None:
    """Let the host's traffic through again."""
    if netns_name:
        _nft(f"delete table inet {tag}\n", netns_name=netns_name)
    _nft(f"delete element inet {tag} {SET} {{ {address} }}\n")


def remove(tag: str) -> bool:
    """Delete the lab's table (namespaces take theirs with them); True if there was one."""
    if not _table_exists(tag):
        return False
    _nft(f"delete table inet {tag}\n")
    return True
