"""`sdnctl network`: private networks across hosts and pools (create, list, show, delete, rekey)."""

from __future__ import annotations

from sdnctl.cli import options, render


def register(subparsers) -> None:
    network = subparsers.add_parser(
        "network", help="private networks: create, list, show, delete",
        description="Private networks span hosts and pools; their intent is stored in XAPI "
                    "(network other_config, sdnctl: keys) and the daemon builds the tunnels.")
    sub = network.add_subparsers(dest="network_command", required=True, metavar="NETWORK_COMMAND")

    create = sub.add_parser("create", help="create a private network in one or more pools")
    create.add_argument("--name", required=True, help="the network's name (name_label in every pool)")
    create.add_argument("--pool", action="append", default=[], required=True,
                        help="a pool (from the config) the network spans; repeat for cross-pool networks")
    create.add_argument("--pif-device", action="append", required=True, metavar="[HOST=]DEVICE",
                        help="the device tunnels leave from: a NIC (eth1) or a bond master (bond0); its PIF needs an "
                             "IP. DEVICE applies to every host; repeat with HOST=DEVICE for a host whose transport "
                             "differs, e.g. --pif-device eth1 --pif-device p1h1=bond0")
    create.add_argument("--vlan", type=int, help="use the VLAN PIF with this tag on each host's device")
    create.add_argument("--encapsulation", choices=["gre", "vxlan"],
                        help="default: the config's [defaults] encapsulation (gre unless set)")
    create.add_argument("--topology", choices=["star", "mesh"],
                        help="star: every host tunnels to one center (XO-compatible); mesh: every pair "
                             "(default: the config's [defaults] topology, star unless set)")
    create.add_argument("--preferred-center",
                        help="host name or uuid to be the star's center: elected when eligible, and back in the role "
                             "once it has been eligible for preferred_center_hold seconds (default 60) after a failover")
    create.add_argument("--vni", type=int, help="the tunnel key; default: the lowest unused")
    create.add_argument("--mtu", default="auto",
                        help="inner MTU in bytes, or 'auto': transport MTU minus the encapsulation's overhead "
                             "(GRE 44, VXLAN 50)")
    create.add_argument("--encrypt", action="store_true",
                        help="encrypt every tunnel with IPsec (ovs-monitor-ipsec on the hosts); sdnctl keeps a "
                             "random pre-shared key per network in its state dir, never in XAPI")
    create.add_argument("--ipsec", choices=["psk", "cert"], default="psk",
                        help="IPsec authentication with --encrypt (default %(default)s; cert is not supported)")
    options.add_config(create)
    create.set_defaults(func=cmd_create)

    listing = sub.add_parser("list", help="list private networks across the configured pools")
    listing.add_argument("--json", action="store_true", help="every network with its settings and pools, as JSON")
    options.add_config(listing)
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="show one private network")
    show.add_argument("name", help="name or private-network uuid")
    show.add_argument("--json", action="store_true", help="the network's settings and pools as JSON")
    options.add_config(show)
    show.set_defaults(func=cmd_show)

    delete = sub.add_parser("delete", help="delete a private network from every pool (tunnels go too)")
    delete.add_argument("name", help="name or private-network uuid")
    options.add_config(delete)
    delete.set_defaults(func=cmd_delete)

    _register_update(sub)
    _register_export_xo(sub)

    rekey = sub.add_parser("rekey", help="replace an encrypted network's IPsec pre-shared key on every tunnel")
    rekey.add_argument("name", help="name or private-network uuid")
    options.add_config(rekey)
    rekey.set_defaults(func=cmd_rekey)


def _register_update(sub) -> None:
    update = options.command(
        sub, "update", help="change a private network in place: name, center, MTU, encryption, topology, pools",
        description="Change a network after creation. Each setting is written to every pool's network\n"
                    "object; the daemon then changes only the tunnel ports that differ. A rename or an MTU\n"
                    "change touches no tunnel; --encrypt/--no-encrypt modify the ports' options in place.\n"
                    "The encapsulation and the VNI cannot change (XAPI fixes a tunnel's protocol at\n"
                    "tunnel.create): create a new network instead.")
    update.add_argument("network", help="name or private-network uuid")
    update.add_argument("--name", help="a new name (name_label in every pool)")
    update.add_argument("--preferred-center", metavar="HOST",
                        help="host name or uuid to prefer as the star's center; '' clears it")
    update.add_argument("--mtu", type=int, help="a new inner MTU in bytes (applies to VIFs as they are next plugged)")
    crypt = update.add_mutually_exclusive_group()
    crypt.add_argument("--encrypt", dest="encrypted", action="store_true", default=None,
                       help="turn IPsec on (the daemon makes the network's key and sets it on every tunnel)")
    crypt.add_argument("--no-encrypt", dest="encrypted", action="store_false", help="turn IPsec off")
    update.add_argument("--topology", choices=["star", "mesh"], help="star (one center) or mesh (every pair)")
    update.add_argument("--add-pool", action="append", default=[], metavar="POOL",
                        help="span one more pool (repeatable); needs --pif-device for its hosts")
    update.add_argument("--remove-pool", action="append", default=[], metavar="POOL",
                        help="leave a pool (repeatable); refused while VIFs use the network there")
    update.add_argument("--pif-device", action="append", default=[], metavar="[HOST=]DEVICE",
                        help="with --add-pool: the device the added pools' tunnels leave from, as for create")
    update.add_argument("--vlan", type=int, help="with --add-pool: the VLAN PIF with this tag on that device")
    update.add_argument("--dry-run", action="store_true",
                        help="print the XAPI writes and the tunnel ports the daemon would change; write nothing")
    options.add_config(update)
    update.set_defaults(func=cmd_update)


def _register_export_xo(sub) -> None:
    export = options.command(
        sub, "export-xo", help="hand a network back to Xen Orchestra: write its xo:sdn-controller keys",
        description="Write the network's settings under Xen Orchestra's keys, as XO's own create does,\n"
                    "and move its rules (and its VIFs' rules) to XO's key. With --release, also remove\n"
                    "sdnctl's keys and mark it sdnctl:managed=false: the running daemon then removes its\n"
                    "tunnel ports, and XO's SDN controller plugin can build its own. Stars only.")
    export.add_argument("network", help="name or private-network uuid")
    export.add_argument("--release", action="store_true",
                        help="also remove sdnctl's keys, so sdnctl stops managing it and sweeps its ports")
    export.add_argument("--dry-run", action="store_true", help="print what would be written; write nothing")
    options.add_config(export)
    export.set_defaults(func=cmd_export_xo)


def _request(args, config):
    from sdnctl.errors import ConfigError
    from sdnctl.networks import CreateRequest, parse_pif_devices

    if args.ipsec == "cert":
        raise ConfigError("--ipsec cert is not supported: it needs a private key placed on every host's file "
                          "system, which XAPI offers no call for; use --ipsec psk (the default)")
    pif_device, host_pif_devices = parse_pif_devices(args.pif_device)
    return CreateRequest(name=args.name, pools=tuple(args.pool), pif_device=pif_device,
                         host_pif_devices=host_pif_devices,
                         encapsulation=args.encapsulation or config.encapsulation,
                         topology=args.topology or config.topology, vlan=args.vlan,
                         preferred_center=args.preferred_center, vni=args.vni, mtu=args.mtu,
                         encrypted=args.encrypt)


def cmd_create(args) -> int:
    from sdnctl import networks

    config = options.load_config(args)
    request = _request(args, config)
    networks.validate(request)
    with networks.Pools(config, list(request.pools)) as pools:
        networks.create(pools, request, print)
    return 0


def cmd_delete(args) -> int:
    from sdnctl import networks

    with networks.Pools(options.load_config(args)) as pools:
        networks.delete(pools, args.name, print)
    return 0


def cmd_update(args) -> int:
    from sdnctl import netupdate, networks

    config = options.load_config(args)
    pif_device, host_pif_devices = networks.parse_pif_devices(args.pif_device) if args.pif_device else ("", ())
    request = netupdate.UpdateRequest(
        network=args.network, name=args.name, preferred_center=args.preferred_center, mtu=args.mtu,
        encrypted=args.encrypted, topology=args.topology, add_pools=tuple(args.add_pool),
        remove_pools=tuple(args.remove_pool), pif_device=pif_device, host_pif_devices=host_pif_devices, vlan=args.vlan)
    with networks.Pools(config) as pools:
        netupdate.update(pools, request, print, dry_run=args.dry_run)
    return 0


def cmd_export_xo(args) -> int:
    from sdnctl import networks, xoexport

    with networks.Pools(options.load_config(args)) as pools:
        xoexport.export(pools, args.network, print, release=args.release, dry_run=args.dry_run)
    return 0


def cmd_rekey(args) -> int:
    from sdnctl import networks
    from sdnctl.ipsec import PskStore

    config = options.load_config(args)
    with networks.Pools(config) as pools:
        networks.rekey(pools, args.name, PskStore(config.state_dir), print)
    return 0


def cmd_list(args) -> int:
    from sdnctl import networks

    with networks.Pools(options.load_config(args)) as pools:
        described = networks.describe(pools)
    print(render.network_list_json(described) if args.json else render.network_list(described))
    return 0


def cmd_show(args) -> int:
    from sdnctl import networks

    with networks.Pools(options.load_config(args)) as pools:
        net_id, _ = networks.find_network(pools, args.name)
        (network,) = [n for n in networks.describe(pools) if n["id"] == net_id]
    print(render.network_show_json(network) if args.json else render.network_show(network))
    return 0
