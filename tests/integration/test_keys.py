"""IPsec key files on a real file system that fills up or turns read-only (a tmpfs the test mounts).

- A full disk while a key is made leaves no key file at all, never an empty one; once space is back
  the key is made.
- An empty or corrupt key file is reported and replaced with a new key.
- A read-only state dir still serves the keys that exist; only a new key fails, with an error.
- The keys of deleted networks are set aside, restored if the network comes back, and removed after
  the grace period.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from pathlib import Path

import pytest

from sdnctl.core.inventory import Inventory
from sdnctl.core.model import PrivateNetwork
from sdnctl.daemon.world import read_psks
from sdnctl.ipsec import PskStore

NET1, NET2 = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "state"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)], check=True, timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)


def fill(directory: Path) -> Path:
    """Write until the file system is full; the filler's path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            for _ in range(10_000):     # bounded: 40 MB, far beyond the 64 KiB
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        else:
            raise AssertionError("the tmpfs never filled")
    return filler


def test_a_full_disk_leaves_no_key_file_and_the_key_comes_once_space_is_back(small_fs):
    store = PskStore(small_fs)
    store.get_or_create(NET1)          # the directory exists; then the disk fills
    filler = fill(small_fs)
    with pytest.raises(OSError) as caught:
        store.get_or_create(NET2)
    assert caught.value.errno == errno.ENOSPC
    assert sorted(p.name for p in store.dir.iterdir()) == [f"{NET1}.psk"]   # no empty key, no temporary file
    assert store.get(NET2) is None
    filler.unlink()
    key = store.get_or_create(NET2)
    assert len(key) == 43 and store.get(NET2) == key


@pytest.mark.parametrize("content", ["", "\n", "\x00\x00\x00", "not a key at all!"], ids=["empty", "newline", "nul",
                                                                                          "garbage"])
def test_an_empty_or_corrupt_key_is_reported_and_replaced(tmp_path, caplog, content):
    store = PskStore(tmp_path)
    store.get_or_create(NET1)
    (store.dir / f"{NET1}.psk").write_text(content)
    with caplog.at_level(logging.ERROR, logger="sdnctl.ipsec"):
        key = store.get_or_create(NET1)
    assert len(key) == 43 and store.get(NET1) == key
    assert f"IPsec key of network {NET1}" in caplog.text and "making a new one" in caplog.text


def test_a_read_only_state_dir_serves_the_keys_it_has(small_fs):
    store = PskStore(small_fs)
    key = store.get_or_create(NET1)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True, timeout=30)
    assert store.get_or_create(NET1) == key            # an existing key needs no write
    with pytest.raises(OSError) as caught:
        store.get_or_create(NET2)
    assert caught.value.errno == errno.EROFS


def test_the_keys_of_deleted_networks_are_set_aside_then_removed(tmp_path):
    store = PskStore(tmp_path)
    key1, key2 = store.get_or_create(NET1), store.get_or_create(NET2)
    assert store.prune([NET1], grace=100, now=1000.0) == []          # NET2 deleted: set aside
    assert store.get(NET2) is None and (store.dir / f"{NET2}.psk.deleted").exists()
    assert store.prune([NET1, NET2], grace=100, now=1050.0) == []    # it came back: its key too
    assert store.get(NET2) == key2
    store.prune([NET1], grace=100, now=2000.0)
    assert store.prune([NET1], grace=100, now=2050.0) == []          # within the grace period: kept aside
    assert store.prune([NET1], grace=100, now=2101.0) == [NET2]      # past it: removed
    assert sorted(p.name for p in store.dir.iterdir()) == [f"{NET1}.psk"] and store.get(NET1) == key1


def test_a_network_whose_key_cannot_be_made_carries_the_error_and_others_go_on(small_fs):
    encrypted = [PrivateNetwork(id=net, name=name, encapsulation="gre", vni=vni, topology="star", encrypted=True)
                 for net, name, vni in ((NET1, "old", 1), (NET2, "new", 2))]
    store = PskStore(small_fs)
    key = store.get_or_create(NET1)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True, timeout=30)
    psks, errors = read_psks(Inventory(networks=tuple(encrypted)), store, create=True)
    assert psks == {NET1: key}
    assert list(errors) == [NET2] and "cannot read or create its IPsec key" in errors[NET2]
    assert "Read-only file system" in errors[NET2]
