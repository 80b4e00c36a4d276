"""`sdnctl run`: the controller daemon, in the foreground (systemd runs this)."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal

from sdnctl.cli import options

EXAMPLES = """\
signals:
  SIGTERM, SIGINT  stop cleanly; tunnels and flows stay on the hosts
  SIGHUP           read the config file again (`systemctl reload sdnctl`); a bad one is refused,
                   with its errors in the log, and the running config stays in force
  SIGUSR1          print every thread's stack to stderr

under systemd (Type=notify) it sends READY=1 once every pool has synced and every host has been
tried, STATUS= lines, and WATCHDOG=1 pings from its event loop when WatchdogSec= is set.
"""


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the controller daemon (foreground; systemd runs this)",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_config(run)
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                     help="override the config's log_level (a reload keeps this override)")
    run.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    """The daemon: runs until SIGTERM/SIGINT; SIGHUP reloads the config."""
    import asyncio

    from sdnctl import logsetup
    from sdnctl.daemon.controller import Controller

    config = options.load_config(args)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack to stderr
    logsetup.configure(args.log_level or config.log_level, config.log_format)
    log = logging.getLogger("sdnctl")
    log.info("sdnctl starting: %d pool(s) from %s", len(config.pools), config.path)
    _warn_opt_outs(config)

    async def main():
        controller = Controller(config)
        task = asyncio.create_task(controller.run())
        loop = asyncio.get_running_loop()
        reloading = asyncio.Lock()

        def stop():
            controller.publisher.notifier.stopping()
            task.cancel()

        async def reload():
            async with reloading:
                await _reload(controller, args)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: controller.tasks.spawn(reload(), name="reload"))
        try:
            await task
        except asyncio.CancelledError:
            log.info("sdnctl stopped")

    asyncio.run(main())
    return 0


async def _reload(controller, args) -> None:
    """SIGHUP: the config file read and checked again, then applied; a bad one changes nothing."""
    from sdnctl import logsetup
    from sdnctl.errors import ConfigError

    log = logging.getLogger("sdnctl")
    notifier = controller.publisher.notifier
    notifier.reloading()
    log.info("SIGHUP: reloading %s", args.config)
    try:
        config = options.load_config(args)
        changes = await controller.reload(config)
    except ConfigError as exc:
        log.error("reload refused, the running config stays in force: %s", exc)
    else:
        logsetup.configure(args.log_level or config.log_level, config.log_format)
        log.info("reloaded %s: %s", config.path, "; ".join(changes) or "no pool, MQTT or metrics change")
        _warn_opt_outs(config)
    finally:
        controller.publisher.due = True   # READY=1 again with the next status


def _warn_opt_outs(config) -> None:
    from sdnctl.config import tls_opt_out

    for warning in filter(None, map(tls_opt_out, config.pools)):
        logging.getLogger("sdnctl").warning("%s", warning)
