"""PURE: the decisions of sdnctl, from plain values to plain values (no sockets, clocks, threads or files)."""
