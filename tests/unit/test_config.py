"""sdnctl.config: what a valid file loads into, and what each mistake's message says."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdnctl import certs
from sdnctl.config import Config, MqttConfig, PoolConfig, default_config_path, load_config, tls_opt_out
from sdnctl.errors import ConfigError

PASSWORD = "s3cret-pw"
MQTT_PASSWORD = "mqtt-s3cret"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def host_pem() -> str:
    return certs.make_self_signed_server("xcp-host1", ["10.0.0.1"], NOW).cert_pem


def _write_private(path: Path, text: str) -> None:
    """A 0600 file (certs.write_private fsyncs, too slow for a unit test)."""
    path.touch(mode=0o600)
    path.write_text(text)


def _populate(directory: Path, host_pem: str) -> Path:
    """The files a config refers to: two 0600 password files and a host certificate bundle."""
    _write_private(directory / "pool.password", PASSWORD + "\n")
    _write_private(directory / "mqtt.password", MQTT_PASSWORD + "\n")
    (directory / "hosts.pem").write_text(host_pem)
    return directory


@pytest.fixture
def workdir(tmp_path: Path, host_pem: str) -> Path:
    return _populate(tmp_path, host_pem)


def _load(directory: Path, text: str) -> Config:
    (directory / "sdnctl.toml").write_text(text)
    return load_config(directory / "sdnctl.toml")


# --- a valid file ------------------------------------------------------------------------------

FULL = """\
# every key, none left at its default
cert_dir = "/srv/sdnctl/certs"
state_dir = "/srv/sdnctl"
override_certs = true
resync_interval = 60
ovsdb_port = 6641
openflow_port = 6654
log_level = "debug"

[defaults]
topology = "mesh"
encapsulation = "vxlan"
fail_mode = "standalone"

[metrics]
listen = "[::1]:9108"

[mqtt]
host = "mqtt.example.net"
port = 8883
topic_prefix = "site1/sdnctl"
username = "sdnctl"
password_file = "mqtt.password"
tls_ca_file = "hosts.pem"

[[pool]]
name = "pool-a"
url = "https://10.0.0.1"
username = "root"
password_file = "pool.password"
tls_ca_file = "hosts.pem"

[[pool]]
name = "pool_b.lab"
url = "https://xcp-b.example.net:8443"
username = "admin"
password_file = "{dir}/pool.password"
tls_fingerprint = "{fingerprint}"

[[pool]]
name = "pool-c"
url = "http://192.0.2.7"
username = "root"
password_file = "pool.password"
tls_verify = false
"""


def test_full_config_loads_into_exactly_these_values(workdir: Path, host_pem: str):
    fingerprint = certs.fingerprint(host_pem)
    text = FULL.format(dir=workdir, fingerprint=fingerprint.replace(":", "").lower())
    config = _load(workdir, text)
    assert config == Config(
        path=workdir / "sdnctl.toml",
        cert_dir=Path("/srv/sdnctl/certs"),
        state_dir=Path("/srv/sdnctl"),
        topology="mesh",
        encapsulation="vxlan",
        fail_mode="standalone",
        override_certs=True,
        resync_interval=60.0,
        ovsdb_port=6641,
        openflow_port=6654,
        log_level="debug",
        metrics_listen="[::1]:9108",
        mqtt=MqttConfig(host="mqtt.example.net", port=8883, topic_prefix="site1/sdnctl", username="sdnctl",
                        password_file=workdir / "mqtt.password", tls_ca_file=workdir / "hosts.pem"),
        pools=(
            PoolConfig(name="pool-a", url="https://10.0.0.1", username="root",
                       password_file=workdir / "pool.password", tls_ca_file=workdir / "hosts.pem"),
            PoolConfig(name="pool_b.lab", url="https://xcp-b.example.net:8443", username="admin",
                       password_file=workdir / "pool.password", tls_fingerprint=fingerprint),
            PoolConfig(name="pool-c", url="http://192.0.2.7", username="root",
                       password_file=workdir / "pool.password", tls_verify=False),
        ),
    )
    assert type(config.resync_interval) is float
    assert config.pools[0].password() == PASSWORD
    assert config.mqtt.password() == MQTT_PASSWORD


def test_empty_file_gives_the_documented_defaults(workdir: Path):
    config = _load(workdir, "")
    assert config == Config(path=workdir / "sdnctl.toml")
    assert (config.cert_dir, config.state_dir, config.topology, config.encapsulation) == (
        Path("/var/lib/sdnctl/certs"), Path("/var/lib/sdnctl"), "star", "gre")
    assert (config.resync_interval, config.ovsdb_port, config.openflow_port, config.log_level) == (
        300.0, 6640, 6653, "info")
    assert (config.override_certs, config.metrics_listen, config.mqtt, config.pools) == (False, None, None, ())
    assert config.fail_mode == "secure"   # rules keep holding while sdnctl is away
    # BFD on every tunnel, declared down after 3 missed 300 ms intervals (~0.9 s); failover after 5 s dead
    assert (config.bfd, config.bfd_min_rx_ms, config.bfd_min_tx_ms, config.dead_center_hold) == (True, 300, 300, 5.0)


def test_mqtt_defaults(workdir: Path):
    assert _load(workdir, '[mqtt]\nhost = "broker"\n').mqtt == MqttConfig(host="broker")
    assert MqttConfig(host="broker").password() is None


def test_relative_paths_resolve_against_the_config_directory(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    (workdir / "etc").mkdir()
    _write_private(workdir / "etc" / "pool.password", PASSWORD + "\n")
    (workdir / "etc" / "sdnctl.toml").write_text(
        'cert_dir = "certs"\nstate_dir = "../state"\n'
        '[[pool]]\nname = "a"\nurl = "https://h"\nusername = "root"\npassword_file = "pool.password"\n'
        'tls_ca_file = "../hosts.pem"\n')
    monkeypatch.chdir(workdir)  # the relative config path is taken from here, the paths in it are not
    config = load_config("etc/sdnctl.toml")
    etc = workdir / "etc"
    assert config.path == etc / "sdnctl.toml"
    assert (config.cert_dir, config.state_dir) == (etc / "certs", etc / "../state")
    assert (config.pools[0].password_file, config.pools[0].tls_ca_file) == (etc / "pool.password", etc / "../hosts.pem")
    assert config.pools[0].password() == PASSWORD


def test_password_is_in_no_repr_or_str(workdir: Path, host_pem: str):
    config = _load(workdir, FULL.format(dir=workdir, fingerprint=certs.fingerprint(host_pem)))
    for shown in (repr(config), str(config), repr(config.pools[0]), str(config.pools[0]), repr(config.mqtt)):
        assert PASSWORD not in shown and MQTT_PASSWORD not in shown


@pytest.mark.parametrize("content, password", [
    ("pw\n", "pw"), ("pw", "pw"), ("pw\r\n", "pw"), (" pw with spaces \n", " pw with spaces "),
], ids=["newline", "no-newline", "crlf", "inner-and-edge-spaces-kept"])
def test_password_strips_only_the_trailing_newline(tmp_path: Path, content: str, password: str):
    _write_private(tmp_path / "pw", content)
    assert PoolConfig(name="a", url="https://h", username="root", password_file=tmp_path / "pw").password() == password


@pytest.mark.parametrize("written", [
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
    "9f:86:d0:81:88:4c:7d:65:9a:2f:ea:a0:c5:5a:d0:15:a3:bf:4f:1b:2b:0b:82:2c:d1:5d:6c:15:b0:f0:0a:08",
    "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08",
    "9f86:D081:884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
], ids=["lower-bare", "upper-bare", "lower-colons", "upper-colons", "mixed"])
def test_fingerprint_is_normalized_to_upper_case_colon_form(workdir: Path, written: str):
    config = _load(workdir, '[[pool]]\nname = "a"\nurl = "https://h"\nusername = "root"\n'
                            f'password_file = "pool.password"\ntls_fingerprint = "{written}"\n')
    assert config.pools[0].tls_fingerprint == (
        "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08")


@pytest.mark.parametrize("listen", ["127.0.0.1:9108", "[::1]:9108", "localhost:1", "metrics.example.net:65535"],
                         ids=["ipv4", "ipv6", "hostname", "fqdn-max-port"])
def test_metrics_listen_accepts_host_port(workdir: Path, listen: str):
    assert _load(workdir, f'[metrics]\nlisten = "{listen}"\n').metrics_listen == listen


def test_tls_verify_false_alone_is_allowed_on_https(workdir: Path):
    config = _load(workdir, '[[pool]]\nname = "a"\nurl = "https://h"\nusername = "root"\n'
                            'password_file = "pool.password"\ntls_verify = false\n')
    assert config.pools[0].tls_verify is False


# --- every mistake: the message starts "<file>:<line>: <key path>:" and says what to do ----------

POOL = '[[pool]]\nname = "a"\nurl = "https://10.0.0.1"\nusername = "root"\npassword_file = "pool.password"\n'
POOL_B = POOL.replace('"a"', '"b"')  # lines 6..10 when it follows POOL

ERRORS = [
    # (id, text, line, key path, fragments the message must hold)
    ("toml-syntax", 'log_level = "info"\novsdb_port = = 1\n', "2:14", None, ["not valid TOML", "Invalid value"]),
    ("toml-duplicate-key", 'ovsdb_port = 1\novsdb_port = 2\n', "2:15", None, ["not valid TOML"]),
    ("unknown-top", 'log_level = "info"\nlog_levle = "debug"\n', 2, "log_levle",
     ["unknown key", "did you mean log_level?", "cert_dir, state_dir"]),
    ("unknown-top-no-match", 'zzz = 1\n', 1, "zzz", ["unknown key", "allowed in the top level: cert_dir"]),
    ("top-key-after-table", '[defaults]\ntopology = "mesh"\ncert_dir = "/x"\n', 3, "defaults.cert_dir",
     ["move it above the first [table] header"]),
    ("defaults-key-at-top", 'topology = "mesh"\n', 1, "topology", ["move it into [defaults]"]),
    ("unknown-defaults", '[defaults]\ntopolgy = "mesh"\n', 2, "defaults.topolgy",
     ["did you mean topology?", "allowed in [defaults]: topology, encapsulation"]),
    ("unknown-metrics", '[metrics]\nlisten_on = "127.0.0.1:9108"\n', 2, "metrics.listen_on", ["did you mean listen?"]),
    ("unknown-mqtt", '[mqtt]\nhost = "b"\nprot = 1883\n', 3, "mqtt.prot", ["did you mean port?"]),
    ("unknown-pool", POOL + 'password = "hunter2"\n', 6, "pool[0].password", ["did you mean password_file?"]),
    ("port-type", 'ovsdb_port = "x"\n', 1, "ovsdb_port", ['"x" is a string, not an integer', "ovsdb_port = 6640"]),
    ("port-bool", 'openflow_port = true\n', 1, "openflow_port", ["true is a boolean, not an integer"]),
    ("port-range", 'openflow_port = 70000\n', 1, "openflow_port", ["70000 is not a TCP port (1..65535)"]),
    ("bool-type", 'override_certs = "yes"\n', 1, "override_certs",
     ['"yes" is a string, not a boolean', "override_certs = false"]),
    ("interval-type", 'resync_interval = true\n', 1, "resync_interval", ["not a number of seconds"]),
    ("interval-zero", 'resync_interval = 0\n', 1, "resync_interval", ["0 is not in (0, 86400] seconds"]),
    ("interval-too-long", 'resync_interval = 86400.5\n', 1, "resync_interval", ["86400.5 is not in (0, 86400]"]),
    ("interval-huge-int", f"resync_interval = {'9' * 400}\n", 1, "resync_interval", ["is not in (0, 86400]"]),
    ("interval-huge-hex", f"log_level = 'info'\nresync_interval = 0x{'f' * 5000}\n", 2, "resync_interval",
     ["a number beyond 64 bits is not in (0, 86400]"]),
    ("toml-int-over-4300-digits", f"log_level = 'info'\nresync_interval = {'9' * 5000}\n", 2, None,
     ["a number has more than 4300 digits"]),
    ("interval-nan", 'resync_interval = nan\n', 1, "resync_interval", ["nan is not in"]),
    ("path-empty", 'cert_dir = ""\n', 1, "cert_dir", ['"" is empty']),
    ("log-level", 'log_level = "verbose"\n', 1, "log_level", ['"verbose" is not one of "debug", "info"']),
    ("topology", '\n[defaults]\ntopology = "ring"\n', 3, "defaults.topology", ['"ring" is not one of "star", "mesh"']),
    ("fail-mode", '\n[defaults]\nfail_mode = "open"\n', 3, "defaults.fail_mode",
     ['"open" is not one of "secure", "standalone"', 'fail_mode = "secure"']),
    ("fail-mode-type", '[defaults]\nfail_mode = true\n', 2, "defaults.fail_mode", ["true is a boolean"]),
    ("bfd-type", '[defaults]\nbfd = "on"\n', 2, "defaults.bfd", ['"on" is a string, not a boolean', "bfd = true"]),
    ("bfd-typo", '[defaults]\nbfd_min_rx = 300\n', 2, "defaults.bfd_min_rx", ["did you mean bfd_min_rx_ms?"]),
    ("bfd-interval-low", '[defaults]\nbfd_min_rx_ms = 10\n', 2, "defaults.bfd_min_rx_ms",
     ["10 is not in [100, 60000] milliseconds", "bfd_min_rx_ms = 300"]),
    ("bfd-interval-float", '\n[defaults]\nbfd_min_tx_ms = 300.0\n', 3, "defaults.bfd_min_tx_ms",
     ["300.0 is a float, not an integer number of milliseconds"]),
    ("dead-center-hold", '[defaults]\ndead_center_hold = -1\n', 2, "defaults.dead_center_hold",
     ["-1 is not in [0, 3600] seconds", "dead_center_hold = 5"]),
    ("bfd-top-level", 'bfd = true\n', 1, "bfd", ["move it into [defaults]"]),
    ("encapsulation", '[defaults]\nencapsulation = "geneve"\n', 2, "defaults.encapsulation",
     ['"geneve" is not one of "gre", "vxlan"']),
    ("defaults-not-table", 'defaults = "mesh"\n', 1, "defaults", ['"mesh" is a string, not a table']),
    ("metrics-no-port", '[metrics]\nlisten = "localhost"\n', 2, "metrics.listen", ['"localhost" is not host:port']),
    ("metrics-bare-ipv6", '[metrics]\nlisten = "::1:9108"\n', 2, "metrics.listen", ["is not host:port"]),
    ("metrics-port-zero", '[metrics]\nlisten = "127.0.0.1:0"\n', 2, "metrics.listen", ["is not host:port"]),
    ("mqtt-missing-host", 'log_level = "info"\n[mqtt]\nport = 1883\n', 2, "mqtt", ["missing required key host"]),
    ("mqtt-password-no-user", '[mqtt]\nhost = "b"\npassword_file = "mqtt.password"\n', 3, "mqtt.password_file",
     ["without a username"]),
    ("mqtt-wildcard", '[mqtt]\nhost = "b"\ntopic_prefix = "a/#"\n', 3, "mqtt.topic_prefix", ["wildcard"]),
    ("pool-url-scheme", POOL + POOL_B.replace("https://10.0.0.1", "ftp://x"), 8, "pool[1].url",
     ['"ftp://x" is not an http:// or https:// URL', 'write e.g. url = "https://10.0.0.1"']),
    ("pool-url-no-host", POOL.replace("https://10.0.0.1", "https://"), 3, "pool[0].url", ['"https://" has no host']),
    ("pool-url-bad-port", POOL.replace("10.0.0.1", "10.0.0.1:99999"), 3, "pool[0].url", ["has a bad host or port"]),
    ("pool-url-port-zero", POOL.replace("10.0.0.1", "10.0.0.1:0"), 3, "pool[0].url", ["has a bad host or port"]),
    ("pool-url-credentials", POOL.replace("https://", "https://root:hunter2@"), 3, "pool[0].url",
     ['"https://...@10.0.0.1" holds a user name or password', "username and password_file"]),
    ("pool-name-chars", POOL.replace('"a"', '"pool a"'), 2, "pool[0].name", ['"pool a" has characters other than']),
    ("pool-duplicate-name", POOL + POOL, 7, "pool[1].name",
     ['"a" is already the name of pool[0] (line 2)', "unique name"]),
    ("pool-missing-username", POOL + POOL_B.replace('username = "root"\n', ""), 6, "pool[1]",
     ["missing required key username", 'add e.g. username = "root"']),
    ("pool-missing-url", POOL.replace('url = "https://10.0.0.1"\n', ""), 1, "pool[0]", ["missing required key url"]),
    ("pool-single-table", '[pool]\nname = "a"\n', 1, "pool", ["not an array of tables", "[[pool]]"]),
    ("pool-verify-type", POOL + 'tls_verify = "false"\n', 6, "pool[0].tls_verify", ["not a boolean"]),
    ("pool-two-pins", POOL + 'tls_ca_file = "hosts.pem"\ntls_fingerprint = "' + "ab" * 32 + '"\n', 7,
     "pool[0].tls_fingerprint", ["together with tls_ca_file"]),
    ("pool-pin-and-no-verify", POOL + 'tls_ca_file = "hosts.pem"\ntls_verify = false\n', 7, "pool[0].tls_verify",
     ["contradicts tls_ca_file"]),
    ("pool-pin-on-http", POOL.replace("https", "http") + 'tls_ca_file = "hosts.pem"\n', 6, "pool[0].tls_ca_file",
     ["plain http", "use an https:// url"]),
    ("pool-bad-fingerprint", POOL + 'tls_fingerprint = "AB:CD"\n', 6, "pool[0].tls_fingerprint",
     ['"AB:CD" is not a SHA-256 fingerprint', "openssl x509"]),
    ("pool-password-missing", POOL.replace("pool.password", "nope.password"), 5, "pool[0].password_file",
     ['"nope.password" (that is, ', "No such file or directory", "mode 0600"]),
    ("pool-password-empty", POOL.replace("pool.password", "empty.password"), 5, "pool[0].password_file",
     ["is empty"]),
    ("pool-password-dir", POOL.replace("pool.password", "."), 5, "pool[0].password_file", ["not a regular file"]),
    ("pool-ca-not-pem", POOL + 'tls_ca_file = "pool.password"\n', 6, "pool[0].tls_ca_file",
     ["holds no usable PEM certificate"]),
    ("inline-table", 'mqtt = { host = "b", port = "x" }\n', 1, "mqtt.port", ['"x" is a string, not an integer']),
]


@pytest.mark.parametrize("text, line, key, fragments", [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_error_names_file_line_key_and_fix(workdir: Path, text: str, line: int | str, key: str | None,
                                           fragments: list[str]):
    _write_private(workdir / "empty.password", "\n")
    with pytest.raises(ConfigError) as raised:
        _load(workdir, text)
    message = str(raised.value)
    assert message.startswith(f"{workdir / 'sdnctl.toml'}:{line}: " + (f"{key}: " if key else ""))
    for fragment in fragments:
        assert fragment in message
    assert "hunter2" not in message and PASSWORD not in message


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644], ids=["group-read", "other-read", "group-write", "644"])
def test_password_file_open_to_others_is_rejected(workdir: Path, mode: int):
    (workdir / "pool.password").chmod(mode)
    with pytest.raises(ConfigError) as raised:
        _load(workdir, POOL)
    assert str(raised.value) == (
        f'{workdir / "sdnctl.toml"}:5: pool[0].password_file: "pool.password" (that is, {workdir / "pool.password"}) '
        f"is open to group or others (mode {mode:04o}); run: chmod 600 {workdir / 'pool.password'}")


def test_non_utf8_file_names_the_line(tmp_path: Path):
    (tmp_path / "sdnctl.toml").write_bytes(b'log_level = "info"\ncert_dir = "\xff"\n')
    with pytest.raises(ConfigError, match=r"sdnctl\.toml:2: byte 0xff is not UTF-8; save the file as UTF-8"):
        load_config(tmp_path / "sdnctl.toml")


def test_missing_file_says_how_to_create_one(tmp_path: Path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "sdnctl.toml")
    assert str(raised.value).startswith(f"{tmp_path / 'sdnctl.toml'}: no such config file; copy "
                                        "systemd/sdnctl.toml.example there")


def test_unreadable_path_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path)


@pytest.mark.parametrize("env, expected", [
    (None, Path("/etc/sdnctl/sdnctl.toml")),
    ("", Path("/etc/sdnctl/sdnctl.toml")),
    ("/tmp/x.toml", Path("/tmp/x.toml")),
], ids=["unset", "empty", "set"])
def test_default_config_path(monkeypatch: pytest.MonkeyPatch, env: str | None, expected: Path):
    if env is None:
        monkeypatch.delenv("SDNCTL_CONFIG", raising=False)
    else:
        monkeypatch.setenv("SDNCTL_CONFIG", env)
    assert default_config_path() == expected


REPO = Path(__file__).resolve().parents[2]
ALL_KEYS = ["cert_dir", "state_dir", "override_certs", "resync_interval", "ovsdb_port", "openflow_port", "log_level",
            "topology", "encapsulation", "fail_mode", "bfd", "bfd_min_rx_ms", "bfd_min_tx_ms", "dead_center_hold", "listen", "host", "port", "topic_prefix", "username", "password_file",
            "tls_ca_file", "name", "url", "tls_fingerprint", "tls_verify"]


def test_example_config_loads_once_its_files_exist(workdir: Path, host_pem: str):
    for pool in ("pool-a", "pool-b"):
        _write_private(workdir / f"{pool}.password", PASSWORD + "\n")
    (workdir / "pool-a-hosts.pem").write_text(host_pem)
    example = (REPO / "systemd" / "sdnctl.toml.example").read_text()
    config = _load(workdir, example.replace("/etc/sdnctl/", f"{workdir}/"))
    assert [pool.name for pool in config.pools] == ["pool-a", "pool-b"]
    assert config == Config(path=config.path, pools=config.pools)  # the rest is commented out: the defaults


@pytest.mark.parametrize("document, mention", [
    ("systemd/sdnctl.toml.example", r"^(# )?{key} = "),  # set, or commented out
    ("docs/config.md", r"^\| `{key}` \|"),  # a row of a key table
], ids=["example", "docs"])
def test_every_key_is_documented(document: str, mention: str):
    text = (REPO / document).read_text()
    assert [key for key in ALL_KEYS if not re.search(mention.format(key=key), text, re.MULTILINE)] == []


# --- whatever the text, the only failure is a ConfigError that names file and line ---------------

@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory, host_pem: str) -> Path:
    return _populate(tmp_path_factory.mktemp("fuzz"), host_pem)


def _load_anything(directory: Path, text: str) -> None:
    path = directory / "sdnctl.toml"
    path.write_text(text, encoding="utf-8")
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as err:
        assert re.match(rf"{re.escape(str(path))}:\d+(:\d+)?: ", str(err)), str(err)


_SCALARS = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_URLISH = st.text(alphabet="0123456789abcdefABCDEF:/[].@-hpst", max_size=70)  # URLs, host:port, fingerprints
_VALUES = st.one_of(_URLISH, _SCALARS, st.lists(_SCALARS, max_size=2))
_GOOD = {  # a valid value for each key, so that a generated file gets past its first check
    "cert_dir": "certs", "state_dir": "/var/lib/sdnctl", "override_certs": True, "resync_interval": 30,
    "ovsdb_port": 6640, "openflow_port": 6653, "log_level": "info", "topology": "mesh", "encapsulation": "vxlan",
    "fail_mode": "standalone", "bfd": False, "bfd_min_rx_ms": 500, "bfd_min_tx_ms": 200, "dead_center_hold": 10,
    "listen": "127.0.0.1:9108", "host": "broker", "port": 1883, "topic_prefix": "sdnctl", "name": "a",
    "url": "https://10.0.0.1", "username": "root", "password_file": "pool.password", "tls_ca_file": "hosts.pem",
    "tls_fingerprint": "ab" * 32, "tls_verify": True,
}
_TABLES = {  # header: (required keys, optional keys)
    "": ((), ("cert_dir", "state_dir", "override_certs", "resync_interval", "ovsdb_port", "openflow_port",
              "log_level")),
    "[defaults]": ((), ("topology", "encapsulation", "fail_mode", "bfd", "bfd_min_rx_ms", "bfd_min_tx_ms",
                        "dead_center_hold")),
    "[metrics]": ((), ("listen",)),
    "[mqtt]": (("host",), ("port", "topic_prefix", "username", "password_file", "tls_ca_file")),
    "[[pool]]": (("name", "url", "username", "password_file"), ("tls_ca_file", "tls_fingerprint", "tls_verify")),
}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)  # ints, and floats: TOML also writes inf and nan


@st.composite
def _documents(draw) -> str:
    """A valid file with some optional keys, then at most one value replaced by an arbitrary one or a stray key."""
    entries: list[list] = []  # [header or None, key, value]
    for header, (required, optional) in _TABLES.items():
        for index in range(draw(st.integers(0, 2)) if header == "[[pool]]" else draw(st.integers(0, 1))):
            if header:
                entries.append([header, None, None])
            for key in (*required, *sorted(draw(st.sets(st.sampled_from(optional))))):
                entries.append([None, key, f"{_GOOD[key]}{index}" if key == "name" else _GOOD[key]])
    keys = [entry for entry in entries if entry[1]]
    spoilt = draw(st.integers(0, len(keys) + 1))
    if spoilt < len(keys):
        keys[spoilt][2] = draw(_VALUES)
    elif spoilt == len(keys):
        entries.append([None, draw(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)), 1])
    return "\n".join(header or f"{key} = {_toml(value)}" for header, key, value in entries)


@given(text=st.text())
def test_arbitrary_text_raises_only_config_error(fuzz_dir: Path, text: str):
    _load_anything(fuzz_dir, text)


@given(text=_documents())
def test_generated_configs_raise_only_config_error(fuzz_dir: Path, text: str):
    _load_anything(fuzz_dir, text)


def test_a_tls_opt_out_is_said_in_words():
    pinned = PoolConfig(name="a", url="https://10.0.0.1", username="root", password_file=Path("/x"),
                        tls_fingerprint="ab" * 32)
    assert tls_opt_out(pinned) is None
    plain = tls_opt_out(dataclasses.replace(pinned, url="http://10.0.0.1"))
    assert plain and "plain HTTP" in plain and "pool a" in plain
    unverified = tls_opt_out(dataclasses.replace(pinned, tls_fingerprint=None, tls_verify=False))
    assert unverified and "not checked" in unverified and "root password" in unverified
