"""The daemon's configuration: one TOML file, read once at start and checked completely up front."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import ssl
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sdnctl.errors import ConfigError
from sdnctl.core.model import ENCAPSULATIONS, FAIL_MODES, TOPOLOGIES

DEFAULT_CONFIG_PATH = Path("/etc/sdnctl/sdnctl.toml")
EXAMPLE_CONFIG = "systemd/sdnctl.toml.example"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
MAX_RESYNC_INTERVAL = 86400.0
BFD_INTERVAL_MS = (100, 60000)     # OVS accepts any positive interval; below 100 ms the CPU cost grows, not the use
MAX_DEAD_CENTER_HOLD = 3600.0


def _read_secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").rstrip("\r\n")


@dataclass(frozen=True)
class PoolConfig:
    """One XCP-ng pool to manage. Holds the password file's path, never the password."""

    name: str
    url: str
    username: str
    password_file: Path
    tls_ca_file: Path | None = None
    tls_fingerprint: str | None = None
    tls_verify: bool = True

    def password(self) -> str:
        """The XAPI password, read from its file now (so a rotated password needs no restart)."""
        return _read_secret(self.password_file)


@dataclass(frozen=True)
class MqttConfig:
    """The optional MQTT broker sdnctl publishes its events to."""

    host: str
    port: int = 1883
    topic_prefix: str = "sdnctl"
    username: str | None = None
    password_file: Path | None = None
    tls_ca_file: Path | None = None

    def password(self) -> str | None:
        """The broker password, read from its file now; None without a password file."""
        return None if self.password_file is None else _read_secret(self.password_file)


@dataclass(frozen=True)
class Config:
    """The whole configuration file. The field defaults are the defaults of the file's keys."""

    path: Path
    cert_dir: Path = Path("/var/lib/sdnctl/certs")
    state_dir: Path = Path("/var/lib/sdnctl")
    topology: str = "star"
    encapsulation: str = "gre"
    fail_mode: str = "secure"
    bfd: bool = True
    bfd_min_rx_ms: int = 300        # OVS declares a tunnel down after 3 missed intervals: ~0.9 s
    bfd_min_tx_ms: int = 300
    dead_center_hold: float = 5.0   # seconds a star's center must look BFD-dead without a break before failover
    preferred_center_hold: float = 60.0   # seconds a preferred center must be eligible before it takes the role back
    override_certs: bool = False
    resync_interval: float = 300.0
    ovsdb_port: int = 6640
    openflow_port: int = 6653
    log_level: str = "info"
    log_format: str = "text"        # text (no timestamps of its own under journald) | json, one object per line
    metrics_listen: str | None = None
    mqtt: MqttConfig | None = None
    pools: tuple[PoolConfig, ...] = ()


RESTART_ONLY = ("cert_dir", "state_dir", "ovsdb_port", "openflow_port")   # what a reload (SIGHUP) cannot change


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The RESTART_ONLY keys whose values differ between two configs."""
    return [key for key in RESTART_ONLY if getattr(old, key) != getattr(new, key)]


def tls_opt_out(pool: PoolConfig) -> str | None:
    """The pool's XAPI protection the operator switched off, in words (logged at start and in status)."""
    if pool.url.startswith("http://"):
        return (f"pool {pool.name}: {pool.url} is plain HTTP: the XAPI password and every record cross the "
                "network unencrypted; use https://")
    if not pool.tls_verify:
        return (f"pool {pool.name}: tls_verify = false: XAPI's certificate is not checked, so anyone on the "
                "path can pose as the pool and get its root password; pin it with tls_ca_file or tls_fingerprint")
    return None


def pools_named(config: Config, names: list[str]) -> list[PoolConfig]:
    """The configured pools of these names (every pool if none is named); ConfigError naming the candidates."""
    known = {pool.name: pool for pool in config.pools}
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise ConfigError(f"no pool named {name!r} in {config.path}"
                              + (f"; did you mean {close[0]!r}?" if close else "")
                              + f" (pools: {', '.join(known) or 'none'})")
    return [known[name] for name in names] if names else list(known.values())


def default_config_path() -> Path:
    """$SDNCTL_CONFIG if set, else /etc/sdnctl/sdnctl.toml."""
    return Path(os.environ.get("SDNCTL_CONFIG") or DEFAULT_CONFIG_PATH)


# --- where keys are: tomllib reports no line numbers, so scan the text ------------------------

_Key = tuple[str | int, ...]  # ("pool", 1, "url") is pool[1].url

_PART = r"""[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*'"""
_DOTTED = rf"(?:{_PART})(?:[ \t]*\.[ \t]*(?:{_PART}))*"
_HEADER = re.compile(rf"[ \t]*(\[\[?)[ \t]*({_DOTTED})[ \t]*\]")
_ASSIGNMENT = re.compile(rf"[ \t]*({_DOTTED})[ \t]*=")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in re.findall(_PART, dotted))


def _key_lines(text: str) -> dict[_Key, int]:
    """The 1-based line where each table and key first appears (good enough for this file's flat shape)."""
    lines: dict[_Key, int] = {}
    table: _Key = ()
    tables_in_array: dict[_Key, int] = {}
    for number, line in enumerate(text.split("\n"), 1):  # TOML lines end at \n only
        if header := _HEADER.match(line):
            name = _parts(header[2])
            if header[1] == "[[":
                index = tables_in_array.get(name, 0)
                tables_in_array[name] = index + 1
                table = (*name, index)
            else:
                table = name
            lines.setdefault(table, number)
        elif assignment := _ASSIGNMENT.match(line):
            dotted = _parts(assignment[1])
            for end in range(1, len(dotted) + 1):
                lines.setdefault((*table, *dotted[:end]), number)
    return lines


def _key_path(key: _Key) -> str:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _show(value: Any) -> str:
    """A value as TOML would write it, shortened for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return shown if len(shown) <= 80 else shown[:76] + '..."'
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, list):
        return "[...]"
    if isinstance(value, int) and value.bit_length() > 64:  # TOML's limit; str() fails past 4300 digits
        return "a number beyond 64 bits"
    return str(value)


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
             dict: "a table"}
    return kinds.get(type(value), f"a {type(value).__name__}")  # TOML dates and times


@dataclass(frozen=True)
class _Source:
    """The file being read: its name for messages, its directory for relative paths, its key lines."""

    name: str
    dir: Path
    lines: dict[_Key, int]

    def error(self, key: _Key, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.name}:{self.line(key)}: {_key_path(key)}: {problem}; {fix}")

    def line(self, key: _Key) -> int:
        """The line of `key`, else of the nearest enclosing table that has one, else 1."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.lines:
                return self.lines[key[:end]]
        return 1


# --- one reader per kind of value: (source, key, raw TOML value) -> checked value -------------

_Reader = Callable[[_Source, _Key, Any], Any]

# What an operator could write for each key (and table), for the fixes in messages.
_EXAMPLES = {
    "cert_dir": 'cert_dir = "/var/lib/sdnctl/certs"',
    "state_dir": 'state_dir = "/var/lib/sdnctl"',
    "override_certs": "override_certs = false",
    "resync_interval": "resync_interval = 300",
    "ovsdb_port": "ovsdb_port = 6640",
    "openflow_port": "openflow_port = 6653",
    "log_level": 'log_level = "info"',
    "log_format": 'log_format = "text"',
    "defaults": '[defaults] with topology = "star"',
    "metrics": '[metrics] with listen = "127.0.0.1:9108"',
    "mqtt": '[mqtt] with host = "mqtt.example.net"',
    "topology": 'topology = "star"',
    "encapsulation": 'encapsulation = "gre"',
    "fail_mode": 'fail_mode = "secure"',
    "bfd": "bfd = true",
    "bfd_min_rx_ms": "bfd_min_rx_ms = 300",
    "bfd_min_tx_ms": "bfd_min_tx_ms = 300",
    "dead_center_hold": "dead_center_hold = 5",
    "preferred_center_hold": "preferred_center_hold = 60",
    "listen": 'listen = "127.0.0.1:9108"',
    "host": 'host = "mqtt.example.net"',
    "port": "port = 1883",
    "topic_prefix": 'topic_prefix = "sdnctl"',
    "name": 'name = "pool-a"',
    "url": 'url = "https://10.0.0.1"',
    "username": 'username = "root"',
    "password_file": 'password_file = "/etc/sdnctl/pool-a.password"',
    "tls_ca_file": 'tls_ca_file = "/etc/sdnctl/pool-a-hosts.pem"',
    "tls_fingerprint": 'tls_fingerprint = "<the AB:CD:... after Fingerprint= in the output of '
                       'openssl x509 -in host.pem -noout -fingerprint -sha256>"',
    "tls_verify": "tls_verify = true",
}


def _write(key: _Key) -> str:
    return f"write e.g. {_EXAMPLES[key[-1]]}"


def _typed(src: _Source, key: _Key, value: Any, types: tuple[type, ...], expected: str) -> Any:
    # bool is an int to Python, never to TOML.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise src.error(key, f"{_show(value)} is {_kind(value)}, not {expected}", _write(key))
    return value


def _string(src: _Source, key: _Key, value: Any) -> str:
    if _typed(src, key, value, (str,), "a string") == "":
        raise src.error(key, '"" is empty', _write(key))
    return value


def _boolean(src: _Source, key: _Key, value: Any) -> bool:
    return _typed(src, key, value, (bool,), "a boolean (true or false)")


def _port(src: _Source, key: _Key, value: Any) -> int:
    if not 1 <= _typed(src, key, value, (int,), "an integer") <= 65535:
        raise src.error(key, f"{value} is not a TCP port (1..65535)", _write(key))
    return value


def _interval(src: _Source, key: _Key, value: Any) -> float:
    # Compare before float(): TOML integers may be too large for a float.
    if not 0 < _typed(src, key, value, (int, float), "a number of seconds") <= MAX_RESYNC_INTERVAL:  # and nan
        raise src.error(key, f"{_show(value)} is not in (0, {MAX_RESYNC_INTERVAL:.0f}] seconds", _write(key))
    return float(value)


def _milliseconds(src: _Source, key: _Key, value: Any) -> int:
    low, high = BFD_INTERVAL_MS
    if not low <= _typed(src, key, value, (int,), "an integer number of milliseconds") <= high:
        raise src.error(key, f"{_show(value)} is not in [{low}, {high}] milliseconds", _write(key))
    return value


def _hold(src: _Source, key: _Key, value: Any) -> float:
    if not 0 <= _typed(src, key, value, (int, float), "a number of seconds") <= MAX_DEAD_CENTER_HOLD:  # and nan
        raise src.error(key, f"{_show(value)} is not in [0, {MAX_DEAD_CENTER_HOLD:.0f}] seconds", _write(key))
    return float(value)


def _choice(choices: tuple[str, ...]) -> _Reader:
    def read(src: _Source, key: _Key, value: Any) -> str:
        if _string(src, key, value) not in choices:
            listed = ", ".join(f'"{choice}"' for choice in choices)
            raise src.error(key, f"{_show(value)} is not one of {listed}", _write(key))
        return value
    return read


def _name(src: _Source, key: _Key, value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", _string(src, key, value)):
        raise src.error(key, f"{_show(value)} has characters other than A-Z a-z 0-9 _ . -", _write(key))
    return value


def _url(src: _Source, key: _Key, value: Any) -> str:
    try:
        parts = urlsplit(_string(src, key, value))
        port = parts.port
    except ValueError:  # a port that is not a number, or a bad IPv6 literal
        parts, port = None, 0
    if parts is None or port == 0:
        problem = "has a bad host or port"
    elif parts.scheme not in ("http", "https"):
        problem = "is not an http:// or https:// URL"
    elif not parts.hostname:
        problem = "has no host"
    elif "@" in parts.netloc:
        # Never echo it: the part before @ may be a password.
        shown = _show(parts._replace(netloc="...@" + parts.netloc.rpartition("@")[2]).geturl())
        raise src.error(key, f"{shown} holds a user name or password", "put them in username and password_file")
    else:
        return value
    raise src.error(key, f"{_show(value)} {problem}", _write(key))


def _path(src: _Source, key: _Key, value: Any) -> Path:
    """A path; a relative one is taken from the config file's directory."""
    return src.dir / _string(src, key, value)


def _regular_file(src: _Source, key: _Key, value: Any, fix: str) -> tuple[Path, os.stat_result, str]:
    """The resolved path, its status, and how to name it in a message."""
    path = _path(src, key, value)
    shown = _show(value) if Path(value).is_absolute() else f"{_show(value)} (that is, {path})"
    try:
        status = path.stat()
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path
        reason = getattr(err, "strerror", None) or str(err)
        raise src.error(key, f"{shown} cannot be read ({reason})", fix) from None
    if not stat.S_ISREG(status.st_mode):
        raise src.error(key, f"{shown} is not a regular file", fix)
    return path, status, shown


def _secret_file(src: _Source, key: _Key, value: Any) -> Path:
    """A password file: no group or other permission bits at all (like ssh keys), readable, not empty."""
    fix = f"put the password alone in that file, mode 0600 (or {_write(key)})"
    path, status, shown = _regular_file(src, key, value, fix)
    if status.st_mode & 0o077:
        mode = stat.S_IMODE(status.st_mode)
        raise src.error(key, f"{shown} is open to group or others (mode {mode:04o})", f"run: chmod 600 {path}")
    try:
        secret = _read_secret(path)
    except OSError as err:
        raise src.error(key, f"{shown} cannot be read ({err.strerror})", fix) from None
    except UnicodeDecodeError:  # its message would quote bytes of the secret
        raise src.error(key, f"{shown} is not UTF-8 text", fix) from None
    if not secret:
        raise src.error(key, f"{shown} is empty", "write the password on its first line")
    return path


def _ca_file(src: _Source, key: _Key, value: Any) -> Path:
    """A PEM bundle, loaded the way the TLS client will load it."""
    fix = f"put the PEM certificates (-----BEGIN CERTIFICATE-----) to trust in that file (or {_write(key)})"
    path, _, shown = _regular_file(src, key, value, fix)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as err:
        reason = getattr(err, "reason", None) or err.strerror
        raise src.error(key, f"{shown} holds no usable PEM certificate ({reason})", fix) from None
    return path


def _fingerprint(src: _Source, key: _Key, value: Any) -> str:
    """A SHA-256 fingerprint, written "AB:CD:..." with 32 upper-case pairs whatever the input's case or colons."""
    digits = _string(src, key, value).replace(":", "").upper()
    if not re.fullmatch(r"[0-9A-F]{64}", digits):
        raise src.error(key, f"{_show(value)} is not a SHA-256 fingerprint (64 hex digits, colons optional)",
                        _write(key))
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def _listen(src: _Source, key: _Key, value: Any) -> str:
    """host:port, with an IPv6 address in brackets ("[::1]:9108")."""
    host, _, port = _string(src, key, value).rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        try:
            valid_host = ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            valid_host = False
    else:
        valid_host = bool(re.fullmatch(r"[A-Za-z0-9.-]+", host))
    if not (valid_host and re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535):
        raise src.error(key, f"{_show(value)} is not host:port", 'write e.g. listen = "127.0.0.1:9108" or "[::1]:9108"')
    return value


def _topic_prefix(src: _Source, key: _Key, value: Any) -> str:
    if "+" in _string(src, key, value) or "#" in value or "\0" in value:
        raise src.error(key, f"{_show(value)} holds an MQTT wildcard (+ or #) or a NUL", _write(key))
    return value


# --- the tables ---------------------------------------------------------------------------------

_TOP: dict[str, _Reader] = {
    "cert_dir": _path,
    "state_dir": _path,
    "override_certs": _boolean,
    "resync_interval": _interval,
    "ovsdb_port": _port,
    "openflow_port": _port,
    "log_level": _choice(LOG_LEVELS),
    "log_format": _choice(LOG_FORMATS),
}
_TOP_TABLES = ("defaults", "metrics", "mqtt", "pool")
_DEFAULTS: dict[str, _Reader] = {"topology": _choice(TOPOLOGIES), "encapsulation": _choice(ENCAPSULATIONS),
                                 "fail_mode": _choice(FAIL_MODES), "bfd": _boolean, "bfd_min_rx_ms": _milliseconds,
                                 "bfd_min_tx_ms": _milliseconds, "dead_center_hold": _hold,
                                 "preferred_center_hold": _hold}
_METRICS: dict[str, _Reader] = {"listen": _listen}
_MQTT: dict[str, _Reader] = {
    "host": _string,
    "port": _port,
    "topic_prefix": _topic_prefix,
    "username": _string,
    "password_file": _secret_file,
    "tls_ca_file": _ca_file,
}
_POOL: dict[str, _Reader] = {
    "name": _name,
    "url": _url,
    "username": _string,
    "password_file": _secret_file,
    "tls_ca_file": _ca_file,
    "tls_fingerprint": _fingerprint,
    "tls_verify": _boolean,
}
_HEADERS = {"": "the top level", "defaults": "[defaults]", "metrics": "[metrics]", "mqtt": "[mqtt]", "pool": "[[pool]]"}
_ALLOWED = {"": (*_TOP, *_TOP_TABLES), "defaults": tuple(_DEFAULTS), "metrics": tuple(_METRICS),
            "mqtt": tuple(_MQTT), "pool": tuple(_POOL)}


def _unknown_key_error(src: _Source, table: _Key, key: str) -> ConfigError:
    """Say where the key belongs, or which allowed key it looks like."""
    here = str(table[0]) if table else ""
    allowed = _ALLOWED[here]
    if here and key in _ALLOWED[""]:
        fix = f"{key} is a top-level key: move it above the first [table] header"
    elif homes := [name for name, keys in _ALLOWED.items() if name and name != here and key in keys]:
        fix = f"move it into {' or '.join(_HEADERS[name] for name in homes)}"
    elif close := difflib.get_close_matches(key, allowed, n=1):
        fix = f"did you mean {close[0]}? (allowed in {_HEADERS[here]}: {', '.join(allowed)})"
    else:
        fix = f"allowed in {_HEADERS[here]}: {', '.join(allowed)}"
    return src.error((*table, key), "unknown key", fix)


def _read_table(src: _Source, table: _Key, data: dict, readers: dict[str, _Reader],
                required: tuple[str, ...] = (), tables: tuple[str, ...] = ()) -> dict[str, Any]:
    """The checked values of the keys present, by key. Unknown keys first: a typo explains a missing key."""
    for key in data:
        if key not in readers and key not in tables:
            raise _unknown_key_error(src, table, key)
    for key in required:
        if key not in data:
            raise src.error(table, f"missing required key {key}", f"add e.g. {_EXAMPLES[key]}")
    return {key: reader(src, (*table, key), data[key]) for key, reader in readers.items() if key in data}


def _subtable(src: _Source, data: dict, name: str) -> dict | None:
    if name not in data:
        return None
    return _typed(src, (name,), data[name], (dict,), "a table")


def _mqtt(src: _Source, data: dict) -> MqttConfig:
    values = _read_table(src, ("mqtt",), data, _MQTT, required=("host",))
    if "password_file" in values and "username" not in values:
        raise src.error(("mqtt", "password_file"), "is set without a username (MQTT sends a password only with one)",
                        'add username = "sdnctl" to [mqtt]')
    return MqttConfig(**values)


def _pool(src: _Source, key: _Key, data: dict) -> PoolConfig:
    values = _read_table(src, key, data, _POOL, required=("name", "url", "username", "password_file"))
    pins = [pin for pin in ("tls_ca_file", "tls_fingerprint") if pin in values]
    if len(pins) > 1:
        raise src.error((*key, pins[1]), "is set together with tls_ca_file", "pin either with a CA bundle or a "
                        "fingerprint, not both: remove one")
    if pins and urlsplit(values["url"]).scheme == "http":
        raise src.error((*key, pins[0]), f"is set but url {_show(values['url'])} is plain http (no TLS)",
                        "use an https:// url, or remove the pin")
    if pins and values.get("tls_verify") is False:
        raise src.error((*key, "tls_verify"), f"false contradicts {pins[0]} (a pin is a way to verify)",
                        "remove tls_verify = false to verify against the pin")
    return PoolConfig(**values)


def _pools(src: _Source, data: dict) -> tuple[PoolConfig, ...]:
    if "pool" not in data:
        return ()
    tables = data["pool"]
    if isinstance(tables, dict):
        raise src.error(("pool",), "is a single table, not an array of tables", "write [[pool]] (double brackets)")
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise src.error(("pool",), f"{_show(tables)} is not an array of tables", "write [[pool]] once per pool")
    pools: list[PoolConfig] = []
    index_of_name: dict[str, int] = {}
    for index, table in enumerate(tables):
        pool = _pool(src, ("pool", index), table)
        if (first := index_of_name.setdefault(pool.name, index)) != index:
            raise src.error(("pool", index, "name"), f"{_show(pool.name)} is already the name of pool[{first}] "
                            f"(line {src.line(('pool', first, 'name'))})", "give each pool a unique name")
        pools.append(pool)
    return tuple(pools)


def _parse(name: str, raw: bytes) -> tuple[dict, str]:
    """The TOML document and its text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ConfigError(f"{name}:{line}: byte 0x{raw[err.start]:02x} is not UTF-8; save the file as UTF-8") \
            from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        if place := re.search(r" \(at line (\d+), column (\d+)\)$", message):
            where, message = f"{place[1]}:{place[2]}", message[:place.start()]
        else:
            where = str(text.count("\n") + 1)  # "(at end of document)"
        raise ConfigError(f"{name}:{where}: not valid TOML: {message}; fix the syntax there "
                          "(TOML reference: https://toml.io/en/v1.0.0)") from None
    except ValueError:  # tomllib lets int()'s 4300-digit limit through as a plain ValueError
        digits = re.search(r"[0-9_]{4300}", text)
        line = text.count("\n", 0, digits.start() if digits else 0) + 1
        raise ConfigError(f"{name}:{line}: a number has more than 4300 digits; write a 64-bit integer") from None


def load_config(path: str | Path) -> Config:
    """Read and check the config file; raises ConfigError naming file, line, key, value and fix."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; copy {EXAMPLE_CONFIG} there and edit its [[pool]] "
                          "tables, or point SDNCTL_CONFIG at your config") from None
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path
        reason = getattr(err, "strerror", None) or err
        raise ConfigError(f"{path}: cannot read the config file ({reason}); make it a readable file") from None
    data, text = _parse(str(path), raw)
    src = _Source(name=str(path), dir=path.absolute().parent, lines=_key_lines(text))
    values = _read_table(src, (), data, _TOP, tables=_TOP_TABLES)
    if (defaults := _subtable(src, data, "defaults")) is not None:
        values |= _read_table(src, ("defaults",), defaults, _DEFAULTS)
    if (metrics := _subtable(src, data, "metrics")) is not None:
        values |= {f"metrics_{key}": value for key, value in _read_table(src, ("metrics",), metrics, _METRICS).items()}
    if (mqtt := _subtable(src, data, "mqtt")) is not None:
        values["mqtt"] = _mqtt(src, mqtt)
    return Config(path=path.absolute(), pools=_pools(src, data), **values)
