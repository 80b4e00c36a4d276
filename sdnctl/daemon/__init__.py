"""The daemon's shell: a thin Controller over per-host agents, an XAPI action executor and pool trust."""
