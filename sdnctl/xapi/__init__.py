"""XAPI: sessions, pool watchers."""
