#!/usr/bin/env bash
# Installs what sdnctl's demo and tests need on Debian 12: apt packages, a venv, the package.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# openvswitch-ipsec (ovs-monitor-ipsec) with strongSwan: `--ike-daemon=strongswan` drives starter/charon
# through `ipsec`; libstrongswan-standard-plugins has the gcm plugin its AES-GCM proposals need, and
# strongswan-swanctl gives `swanctl --list-sas` (vici). The lab runs one copy per host (sdnctl/lab/ipsec.py).
APT_PACKAGES=(openvswitch-switch openvswitch-common mosquitto iproute2 iputils-ping netcat-openbsd ethtool nftables
              openvswitch-ipsec strongswan strongswan-charon strongswan-starter strongswan-swanctl
              libstrongswan-standard-plugins
              ovn-central ovn-host python3-openvswitch   # bench/ovn.py: OVN, the peer sdnctl's host join is measured against
              systemd passwd)   # systemd-analyze checks systemd/sdnctl.service; useradd makes the tests' service user

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "bootstrap: installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the system's own OVS, mosquitto, strongSwan and ovs-monitor-ipsec on install (where
# invoke-rc.d may); the lab runs its own copies, so stop them, and keep the IPsec ones from starting at boot.
for svc in openvswitch-switch mosquitto openvswitch-ipsec strongswan-starter ipsec ovn-central ovn-host; do
    systemctl stop "$svc" >/dev/null 2>&1 || true
done
for svc in openvswitch-ipsec strongswan-starter ipsec ovn-central ovn-host; do
    systemctl disable "$svc" >/dev/null 2>&1 || true
done
# Without systemd, the init scripts: stop the system-wide instances if any runs (by their own pid files).
if [ ! -d /run/systemd/system ]; then
    [ -f /run/openvswitch/ovs-monitor-ipsec.pid ] && /etc/init.d/openvswitch-ipsec stop >/dev/null 2>&1 || true
    [ -f /run/starter.charon.pid ] && /usr/sbin/ipsec stop >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.sdnctl-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: pip install -e .[test,bench]"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test,bench]'
    touch "$stamp"
fi

# python-ovs parses every OVSDB message in pure Python unless its C extension ovs._json is built, and
# PyPI's ovs builds it only against libopenvswitch, which Debian ships no -dev package of. Debian's
# python3-openvswitch has it built for Python 3.11 (libopenvswitch linked in): the venv uses that one
# when its own python-ovs has none and the ABI matches. sdnctl works without it, 5-10x slower at 64 hosts.
site=$(.venv/bin/python -c 'import ovs, os; print(os.path.dirname(ovs.__file__))')
abi=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
debian_json=/usr/lib/python3/dist-packages/ovs/_json$abi
if ! .venv/bin/python -c 'import ovs._json' 2>/dev/null && [ -f "$debian_json" ]; then
    echo "bootstrap: using python3-openvswitch's C JSON parser for python-ovs"
    cp "$debian_json" "$site/"
    .venv/bin/python -c 'import ovs._json' 2>/dev/null || { echo "bootstrap: it does not load; removed"; rm -f "$site/_json$abi"; }
fi
