"""`sdnctl run`: the controller daemon, in the foreground (systemd runs this)."""

from __future__ import annotations

import faulthandler
import logging
import signal

from sdnctl.cli import options


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the controller daemon (foreground; systemd runs this)")
    options.add_config(run)
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                     help="override the config's log_level")
    run.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    """The daemon: runs until SIGTERM/SIGINT."""
    import asyncio

    from sdnctl.ipsec import REDACTOR
    from sdnctl.daemon.controller import Controller

    config = options.load_config(args)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack to stderr
    logging.basicConfig(level=(args.log_level or config.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(REDACTOR)
    logging.getLogger("sdnctl").info("sdnctl starting: %d pool(s) from %s", len(config.pools), config.path)

    async def main():
        task = asyncio.create_task(Controller(config).run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            logging.getLogger("sdnctl").info("sdnctl stopped")

    asyncio.run(main())
    return 0
