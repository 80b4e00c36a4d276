"""Per-host OVSDB connections."""
