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
    create.add_argument("--preferred-center", help="host name or uuid to be the star's center while eligible")
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

    rekey = sub.add_parser("rekey", help="replace an encrypted network's IPsec pre-shared key on every tunnel")
    rekey.add_argument("name", help="name or private-network uuid")
    options.add_config(rekey)
    rekey.set_defaults(func=cmd_rekey)


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
