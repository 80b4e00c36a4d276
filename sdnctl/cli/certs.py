"""`sdnctl certs`: the controller's CA and client certificate, and the pools' trust in it."""

from __future__ import annotations

import sys
from typing import Any

from sdnctl.cli import options, render
from sdnctl.config import pools_named


def register(subparsers) -> None:
    certs = subparsers.add_parser(
        "certs", help="the controller's CA and client certificate, and the pools' trust in it",
        description="sdnctl's CA signs its client certificate; each pool must trust that CA as "
                    "sdn-controller-ca.pem for its hosts' OVSDB to accept sdnctl. Files: see certs/README.md.")
    sub = certs.add_subparsers(dest="certs_command", required=True, metavar="CERTS_COMMAND")

    init = sub.add_parser("init", help="create the CA and client certificate (keeps valid existing ones)")
    options.add_config(init)
    init.set_defaults(func=cmd_init)

    show = sub.add_parser("show", help="subjects, fingerprints, expiry, and where each pool stands")
    show.add_argument("--pool", action="append", default=[], help="only this pool (repeatable)")
    show.add_argument("--json", action="store_true", help="the certificates and each pool's trust as JSON")
    options.add_config(show)
    show.set_defaults(func=cmd_show)

    install = sub.add_parser("install", help="install the CA into the pools (compared by content)")
    install.add_argument("--override", action="store_true",
                         help="replace a different sdn-controller-ca.pem (e.g. Xen Orchestra's)")
    install.add_argument("--pool", action="append", default=[], help="only this pool (repeatable)")
    options.add_config(install)
    install.set_defaults(func=cmd_install)

    rotate = sub.add_parser("rotate", help="issue a new client certificate under the same CA")
    options.add_config(rotate)
    rotate.set_defaults(func=cmd_rotate)


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


def cmd_init(args) -> int:
    from sdnctl import certs

    config = options.load_config(args)
    now = _now()
    paths, created = certs.ensure_controller_certs(config.cert_dir, now)
    print(f"{'created' if created else 'kept the existing'} CA and client certificate in {paths.dir}")
    for path in (paths.ca_cert, paths.client_cert):
        info = certs.cert_info(path, now)
        print(f"  {path.name}: {info.subject}, SHA-256 {info.fingerprint}, expires {info.not_after}")
    return 0


def _existing(config):
    """The controller's certificate files, or None (and a hint on stderr) before `certs init`."""
    from sdnctl import certs

    paths = certs.ControllerCerts(config.cert_dir)
    if not paths.ca_cert.exists():
        print(f"no CA in {config.cert_dir}: run `sdnctl certs init` first", file=sys.stderr)
        return None
    return paths


def cmd_rotate(args) -> int:
    from sdnctl import certs

    config = options.load_config(args)
    paths = _existing(config)
    if paths is None:
        return 1
    now = _now()
    old = certs.cert_info(paths.client_cert, now).fingerprint
    certs.rotate_client(paths, now)
    new = certs.cert_info(paths.client_cert, now)
    print(f"new client certificate SHA-256 {new.fingerprint} (was {old}), expires {new.not_after}; "
          "a running daemon reconnects host by host within seconds, tunnels stay")
    return 0


def _each_pool(pools: list, ask) -> list[tuple[Any, Any]]:
    """(pool, ask(call, pool) or the exception it raised) for each of these pools, all at once."""
    import asyncio

    from sdnctl.xapi.client import XapiClient

    async def one(pool):
        client = XapiClient(pool)
        try:
            return await ask(client.acall, pool)
        finally:
            await asyncio.to_thread(client.close)

    async def all_pools():
        return await asyncio.gather(*(one(p) for p in pools), return_exceptions=True)

    return list(zip(pools, asyncio.run(all_pools())))


def cmd_install(args) -> int:
    from sdnctl.xapi.trust import ensure_trust

    config = options.load_config(args)
    pools = pools_named(config, args.pool)
    paths = _existing(config)
    if paths is None:
        return 1
    ca_pem = paths.ca_cert.read_text()

    async def install(call, pool):
        return await ensure_trust(call, pool.name, ca_pem, override=args.override, config_path=str(config.path),
                                  replace_unverifiable=args.override)

    failed = False
    for pool, result in _each_pool(pools, install):
        if isinstance(result, Exception):
            print(f"pool {pool.name}: unreachable: {result}")
            failed = True
        else:
            print(f"pool {pool.name}: {result.state}" + (f": {result.message}" if result.message else ""))
            failed |= not result.usable
    return 1 if failed else 0


def cmd_show(args) -> int:
    from sdnctl import certs
    from sdnctl.xapi.trust import installed_fingerprint

    config = options.load_config(args)
    pools = pools_named(config, args.pool)
    paths = _existing(config)
    if paths is None:
        return 1
    now = _now()

    async def ask(call, pool):
        return await installed_fingerprint(call)

    trust = [render.PoolTrust(pool.name, error=str(result)) if isinstance(result, Exception)
             else render.PoolTrust(pool.name, installed=result[0], fingerprint=result[1])
             for pool, result in _each_pool(pools, ask)]
    certificates = [("CA", certs.cert_info(paths.ca_cert, now)), ("client", certs.cert_info(paths.client_cert, now))]
    ours = certs.fingerprint(paths.ca_cert.read_text())
    print((render.certs_show_json if args.json else render.certs_show)(certificates, trust, ours))
    return 1 if any(p.error is not None for p in trust) else 0
