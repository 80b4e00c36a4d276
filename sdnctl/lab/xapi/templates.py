"""A pool's VM library: the templates XCP-ng installs and a few snapshots, with full VM records.

A real pool's first `event.from` carries these: a client that subscribes to "vm" must cope with them
(they are never resident, never running). The schema has no `is_a_snapshot`/`snapshot_of`, so a snapshot
is a template (as xapi marks it) named after its VM.
"""

from __future__ import annotations

from sdnctl.lab.xapi.context import Context

# A sample of XCP-ng 8.3's default templates (`xe template-list`).
TEMPLATES = [
    "AlmaLinux 8", "AlmaLinux 9", "Alpine Linux 3.19", "CentOS Stream 8", "CentOS Stream 9", "CoreOS",
    "Debian Bookworm 12", "Debian Bullseye 11", "Debian Buster 10", "Fedora 40", "Gentoo", "Generic Linux BIOS",
    "Generic Linux UEFI", "NixOS", "Oracle Linux 8", "Oracle Linux 9", "Other install media",
    "Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9", "Rocky Linux 8", "Rocky Linux 9",
    "SUSE Linux Enterprise Server 15 (64-bit)", "Ubuntu Focal Fossa 20.04", "Ubuntu Jammy Jellyfish 22.04",
    "Ubuntu Noble Numbat 24.04", "Windows 10 (64-bit)", "Windows 11", "Windows Server 2016 (64-bit)",
    "Windows Server 2019 (64-bit)", "Windows Server 2022 (64-bit)",
]
SNAPSHOTS = ["web-1 before upgrade", "web-2 before upgrade", "db-1 nightly", "db-1 weekly", "ci-runner clean",
             "router golden"]


def create(ctx: Context) -> None:
    """The templates and snapshots: halted, resident nowhere, no domain."""
    for name in TEMPLATES:
        ctx.store.create("VM", name_label=name, name_description=f"Template which allows VM installation ({name})",
                         power_state="Halted", domid="-1", is_a_template=True,
                         other_config={"default_template": "true", "install-methods": "cdrom,nfs,http,ftp"})
    for name in SNAPSHOTS:
        ctx.store.create("VM", name_label=name, name_description="Snapshot", power_state="Halted", domid="-1",
                         is_a_template=True, tags=["snapshot"])
