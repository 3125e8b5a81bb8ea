"""Egress allow-lists: `[network] egress` through mcpjail's host-side proxy.

Everything the tests reach is on this machine: HTTP servers on 127.0.0.1 and in a network
namespace the tests create (a veth pair with 198.51.100.0/24 and 10.231.77.0/24, the
namespace's own addresses). Names are given to those addresses by running `mcpjail run`
in a private mount namespace with its own /etc/hosts; the proxy resolves names on the host
side, so that file is what it sees. The jailed probe (tests/probes/egress_probe.py) shows
what gets out; run unjailed, the same probe reaches what the jail stops.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import anyio
import pytest

from conftest import PYTHON, ROOT, VENV_BIN, Jail, toml_array

PROBE = ROOT / "tests" / "probes" / "egress_probe.py"
NETNS = f"mcpjail-eg-{os.getpid()}"
VETH_HOST = f"mjeg{os.getpid() % 100000}h"
VETH_NS = f"mjeg{os.getpid() % 100000}n"
PUBLIC = "198.51.100.2"  # the namespace's address that is not "internal" (TEST-NET-2)
PRIVATE = "10.231.77.2"  # the namespace's RFC 1918 address
PUBLIC6 = "2001:db8:77::2"  # the namespace's IPv6 address (documentation range)
SVC_PORT = 8081
OTHER_PORT = 8082


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    """A network namespace with HTTP servers on PUBLIC and PRIVATE, ports 8081 and 8082.
    Missing `ip netns` or root is a failure, not a skip: CI must run these tests."""
    assert os.geteuid() == 0, "the egress tests create network namespaces: run them as root"
    assert shutil.which("ip"), "iproute2 (ip) is needed: make deps"
    assert shutil.which("curl"), "curl is needed: make deps"
    www = tmp_path_factory.mktemp("www")
    (www / "index.html").write_text("svc-ok\n")
    sh("ip", "netns", "add", NETNS)
    servers = []
    try:
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        sh("ip", "link", "set", VETH_NS, "netns", NETNS)
        sh("ip", "addr", "add", "198.51.100.1/24", "dev", VETH_HOST)
        sh("ip", "addr", "add", "10.231.77.1/24", "dev", VETH_HOST)
        sh("ip", "addr", "add", "2001:db8:77::1/64", "dev", VETH_HOST, "nodad")
        sh("ip", "link", "set", VETH_HOST, "up")
        for cmd in (["addr", "add", f"{PUBLIC}/24", "dev", VETH_NS], ["addr", "add", f"{PRIVATE}/24", "dev", VETH_NS],
                    ["addr", "add", f"{PUBLIC6}/64", "dev", VETH_NS, "nodad"],
                    ["link", "set", VETH_NS, "up"], ["link", "set", "lo", "up"]):
            sh("ip", "-n", NETNS, *cmd)
        for port in (SVC_PORT, OTHER_PORT):
            servers.append(subprocess.Popen(
                ["ip", "netns", "exec", NETNS, str(PYTHON), "-m", "http.server", str(port), "--bind", "::",
                 "--directory", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((PUBLIC, SVC_PORT), timeout=1).close()
                socket.create_connection((PUBLIC, OTHER_PORT), timeout=1).close()
                socket.create_connection((PUBLIC6, SVC_PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the namespace's HTTP servers did not start")
        yield
    finally:
        for server in servers:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        subprocess.run(["ip", "link", "del", VETH_HOST], capture_output=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"local-ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_http():
    """An HTTP server on this machine's 127.0.0.1 (the host's loopback, not the jail's)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def hosts_file(root: Path) -> Path:
    path = root / "hosts"
    path.write_text(
        "127.0.0.1 localhost\n"
        f"{PUBLIC} svc.test www.svc.test\n"
        f"{PRIVATE} private.test\n"
        f"{PUBLIC6} svc6.test\n"
        "127.0.0.1 loop.test\n")
    return path


def with_hosts(root: Path, argv: list[str]) -> list[str]:
    """argv in a private mount namespace whose /etc/hosts is the test's."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
            str(hosts_file(root)), *argv]


def network_table(egress: list[str], extra: str = "") -> str:
    return f'[tools]\ndefault = "allow"\n[network]\negress = {toml_array(egress)}\n{extra}'


def run_probe(
    jail: Jail, attempts: list[dict], egress: list[str] | None, extra: str = "", jailed: bool = True, user: bool = False
) -> dict:
    name = f"probe{len(list(jail.root.glob('attempts-*')))}"
    attempts_path = jail.root / f"attempts-{name}.json"
    results_path = jail.root / f"results-{name}.json"
    attempts_path.write_text(json.dumps(attempts))
    os.chmod(attempts_path, 0o644)
    argv = [str(PYTHON), str(PROBE), str(attempts_path), str(results_path)]
    if jailed:
        jail.write_profile(name, PYTHON, argv[1:], stop_timeout="60s", policy=network_table(egress or [], extra))
        argv = jail.command(name)
        if user:  # mcpjail itself as uid 65534 (after the mount of /etc/hosts, which needs root)
            for path in (jail.state, jail.profiles, *jail.profiles.iterdir()):
                os.chown(path, 65534, 65534)
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *argv]
    done = subprocess.run(with_hosts(jail.root, argv), env=jail.env(), input=b"", capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace") + (jail.stderr_log(name) if jailed else "")
    return json.loads(results_path.read_text())


def egress_records(jail: Jail) -> list[dict]:
    return [r for r in jail.audit() if r["method"].startswith("egress/")]


def record_for(jail: Jail, destination: str, method: str = "egress/connect", protocol: str | None = None) -> dict:
    found = [r for r in egress_records(jail) if r.get("destination") == destination and r["method"] == method
             and (protocol is None or r.get("protocol") == protocol)]
    assert found, f"no {method} {protocol or ''} record for {destination}: {egress_records(jail)}"
    return found[-1]


def assert_refused_record(jail: Jail, destination: str, protocol: str) -> None:
    """An attempt the jail's kernel refused (nothing listens for it) is a denial on record."""
    record = record_for(jail, destination, protocol=protocol)
    assert record["decision"] == "deny" and record["outcome"] == "refused" and record["error_type"] == "not_allowed", record


def denials_in_logs(jail: Jail) -> int:
    logs = jail.mcpjail("logs")
    assert logs.returncode == 0, logs.stderr
    counted = [line for line in logs.stdout.splitlines() if "egress denials" in line]
    assert counted, logs.stdout
    return int(counted[-1].split()[0])


def test_allowed_destinations_get_out_and_nothing_else(jail: Jail, netns, local_http):
    local = local_http
    abstract_name = f"mcpjail-egress-test-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(8)
    attempts = [
        {"id": "allowed_name", "kind": "tcp", "host": "svc.test", "port": SVC_PORT},
        {"id": "allowed_wildcard", "kind": "tcp", "host": "www.svc.test", "port": SVC_PORT},
        {"id": "allowed_literal", "kind": "tcp", "host": "127.0.0.1", "port": local},
        {"id": "same_host_listed_port_of_another", "kind": "tcp", "host": "svc.test", "port": local},
        {"id": "same_host_unlisted_port", "kind": "tcp", "host": "svc.test", "port": OTHER_PORT},
        {"id": "other_name", "kind": "tcp", "host": "other.test", "port": SVC_PORT},
        {"id": "raw_ip_unlisted", "kind": "tcp", "host": "127.0.0.2", "port": local},
        {"id": "private_resolution", "kind": "tcp", "host": "private.test", "port": SVC_PORT},
        {"id": "loopback_resolution", "kind": "tcp", "host": "loop.test", "port": SVC_PORT},
        {"id": "bypass_public", "kind": "tcp", "host": PUBLIC, "port": SVC_PORT},
        {"id": "bypass_private", "kind": "tcp", "host": PRIVATE, "port": SVC_PORT},
        {"id": "udp_out", "kind": "udp", "host": PUBLIC, "port": 53},
        {"id": "udp_pool", "kind": "udp", "host": "svc.test", "port": SVC_PORT},
        {"id": "ipv6_unlisted", "kind": "tcp", "host": "::1", "port": local},
        {"id": "dns_other", "kind": "dns", "host": "other.test"},
        {"id": "abstract_socket", "kind": "abstract", "name": abstract_name},
        # IPv6 the same as IPv4: names resolved for AF_INET6 only (AAAA from the DNS stub's pool).
        {"id": "v6_allowed_name", "kind": "tcp", "host": "svc.test", "port": SVC_PORT, "family": 6},
        {"id": "v6_allowed_name6", "kind": "tcp", "host": "svc6.test", "port": SVC_PORT, "family": 6},
        {"id": "v6_unlisted_port", "kind": "tcp", "host": "svc6.test", "port": OTHER_PORT, "family": 6},
        {"id": "v6_other_name", "kind": "tcp", "host": "other.test", "port": SVC_PORT, "family": 6},
        {"id": "udp6_pool", "kind": "udp", "host": "svc.test", "port": SVC_PORT, "family": 6},
    ]
    allowed_ids = ("allowed_name", "allowed_wildcard", "allowed_literal", "v6_allowed_name", "v6_allowed_name6")
    egress = [f"svc.test:{SVC_PORT}", f"*.svc.test:{SVC_PORT}", f"127.0.0.1:{local}", f"private.test:{SVC_PORT}",
              f"loop.test:{SVC_PORT}", f"svc6.test:{SVC_PORT}"]
    jailed = run_probe(jail, attempts, egress)

    for ok in allowed_ids:
        assert jailed[ok]["ok"], (ok, jailed[ok])
    assert "svc-ok" in jailed["allowed_name"]["body"] and "local-ok" in jailed["allowed_literal"]["body"]
    assert "svc-ok" in jailed["v6_allowed_name"]["body"] and "svc-ok" in jailed["v6_allowed_name6"]["body"]
    refused = {k: v for k, v in jailed.items() if k not in allowed_ids}
    for key, result in refused.items():
        assert not result["ok"], (key, result)
        assert result["seconds"] < 5, f"{key} hung: {result}"  # refused at once, never a hang
    assert jailed["same_host_unlisted_port"]["errno"] == "ECONNREFUSED"
    assert jailed["same_host_listed_port_of_another"]["errno"] == "ECONNRESET"
    assert jailed["other_name"]["errno"] == "EAI_NONAME" and jailed["dns_other"]["errno"] == "EAI_NONAME"
    assert jailed["raw_ip_unlisted"]["errno"] == "ECONNRESET"
    assert jailed["private_resolution"]["errno"] == "ECONNRESET"
    assert jailed["loopback_resolution"]["errno"] == "ECONNRESET"
    # Every address is local to the jail: a direct connection lands on the listener and is judged.
    assert jailed["bypass_public"]["errno"] == "ECONNRESET" and jailed["bypass_private"]["errno"] == "ECONNRESET"
    assert jailed["udp_out"]["errno"] == "ECONNREFUSED" and jailed["udp_pool"]["errno"] == "ECONNREFUSED"
    assert jailed["ipv6_unlisted"]["errno"] == "ECONNRESET"
    assert jailed["abstract_socket"]["errno"] == "ECONNREFUSED"  # the host's are per network namespace
    assert jailed["v6_unlisted_port"]["errno"] == "ECONNREFUSED" and jailed["udp6_pool"]["errno"] == "ECONNREFUSED"
    assert jailed["v6_other_name"]["errno"] == "EAI_NONAME"

    # The audit log has a record for each connection that reached the proxy.
    allowed = record_for(jail, f"svc.test:{SVC_PORT}", protocol="tcp")
    assert allowed["decision"] == "allow" and allowed["outcome"] == "ok" and allowed["address"] == PUBLIC
    assert allowed["bytes_in"] > 0 and allowed["bytes_out"] > 0
    assert record_for(jail, f"www.svc.test:{SVC_PORT}")["decision"] == "allow"
    assert record_for(jail, f"svc6.test:{SVC_PORT}")["address"] == PUBLIC6  # asked over IPv6, carried as resolved
    assert record_for(jail, f"127.0.0.1:{local}")["outcome"] == "ok"
    for destination, why in ((f"svc.test:{local}", "not_allowed"), (f"127.0.0.2:{local}", "not_allowed"),
                             (f"private.test:{SVC_PORT}", "internal_address"), (f"loop.test:{SVC_PORT}", "internal_address"),
                             (f"[::1]:{local}", "not_allowed"), (f"{PUBLIC}:{SVC_PORT}", "not_allowed"),
                             (f"{PRIVATE}:{SVC_PORT}", "not_allowed")):
        record = record_for(jail, destination)
        assert record["decision"] == "deny" and record["error_type"] == why, record
    assert record_for(jail, "other.test", method="egress/dns")["decision"] == "deny"
    # What nothing in the jail listens for is refused by the jail's kernel, and is a record too,
    # with the name when the address is one the DNS stub handed out (IPv4 or IPv6).
    assert_refused_record(jail, f"svc.test:{OTHER_PORT}", "tcp")
    assert_refused_record(jail, f"svc6.test:{OTHER_PORT}", "tcp")
    assert_refused_record(jail, f"{PUBLIC}:53", "udp")
    assert_refused_record(jail, f"svc.test:{SVC_PORT}", "udp")
    udp_pool = [r for r in egress_records(jail) if r.get("protocol") == "udp" and r["destination"] == f"svc.test:{SVC_PORT}"]
    assert sum(r.get("attempts", 1) for r in udp_pool) == 2, udp_pool  # udp_pool and udp6_pool
    assert jail.verify().returncode == 0

    # `mcpjail logs` counts the denials: every deny record, coalesced ones by their attempts.
    denials = [r for r in egress_records(jail) if r["decision"] == "deny"]
    assert denials_in_logs(jail) == sum(r.get("attempts", 1) for r in denials)
    assert "private.test" in jail.mcpjail("logs").stdout

    # Unjailed, the same probe gets through where the jail stopped it: the probe detects a breach.
    free = run_probe(jail, attempts, None, jailed=False)
    for key in ("bypass_public", "bypass_private", "same_host_unlisted_port", "private_resolution", "abstract_socket",
                "v6_unlisted_port"):
        assert free[key]["ok"], (key, free[key])
    abstract.close()


def test_egress_works_the_same_for_an_ordinary_user(jail: Jail, netns):
    attempts = [
        {"id": "allowed_name", "kind": "tcp", "host": "svc.test", "port": SVC_PORT},
        {"id": "other_name", "kind": "tcp", "host": "other.test", "port": SVC_PORT},
        {"id": "private_resolution", "kind": "tcp", "host": "private.test", "port": SVC_PORT},
        {"id": "bypass_public", "kind": "tcp", "host": PUBLIC, "port": SVC_PORT},
    ]
    # cgroup v1 hosts give ordinary users no cgroup: rlimits only.
    results = run_probe(jail, attempts, [f"svc.test:{SVC_PORT}", f"private.test:{SVC_PORT}"],
                        extra='[limits]\nenforce = "best-effort"\n', user=True)
    assert results["allowed_name"]["ok"] and "svc-ok" in results["allowed_name"]["body"], results
    assert results["other_name"]["errno"] == "EAI_NONAME"
    assert results["private_resolution"]["errno"] == "ECONNRESET"
    assert results["bypass_public"]["errno"] == "ECONNRESET"
    assert record_for(jail, f"private.test:{SVC_PORT}")["error_type"] == "internal_address"
    assert record_for(jail, f"{PUBLIC}:{SVC_PORT}")["error_type"] == "not_allowed"


def test_ip_literals_are_reached_as_they_are(jail: Jail, netns):
    """IPv4 and IPv6 literals that are not loopback: carried by the proxy like names."""
    attempts = [
        {"id": "v4_literal", "kind": "tcp", "host": PUBLIC, "port": OTHER_PORT},
        {"id": "v6_literal", "kind": "tcp", "host": PUBLIC6, "port": SVC_PORT},
        {"id": "v4_other_port", "kind": "tcp", "host": PUBLIC, "port": SVC_PORT},
        {"id": "v6_other_port", "kind": "tcp", "host": PUBLIC6, "port": OTHER_PORT},
        {"id": "v4_unlisted", "kind": "tcp", "host": PRIVATE, "port": OTHER_PORT},
        {"id": "v4_unlisted_port", "kind": "tcp", "host": PUBLIC, "port": 9},
    ]
    results = run_probe(jail, attempts, [f"{PUBLIC}:{OTHER_PORT}", f"[{PUBLIC6}]:{SVC_PORT}"])
    assert results["v4_literal"]["ok"] and "svc-ok" in results["v4_literal"]["body"], results["v4_literal"]
    assert results["v6_literal"]["ok"] and "svc-ok" in results["v6_literal"]["body"], results["v6_literal"]
    # Both ports are listened on (each is listed once), for the other address family's literal.
    assert results["v4_other_port"]["errno"] == "ECONNRESET", results["v4_other_port"]
    assert results["v6_other_port"]["errno"] == "ECONNRESET", results["v6_other_port"]
    assert results["v4_unlisted"]["errno"] == "ECONNRESET", results["v4_unlisted"]
    assert results["v4_unlisted_port"]["errno"] == "ECONNREFUSED", results["v4_unlisted_port"]  # nothing listens on 9
    assert record_for(jail, f"[{PUBLIC6}]:{SVC_PORT}")["address"] == PUBLIC6
    assert record_for(jail, f"{PUBLIC}:{SVC_PORT}")["error_type"] == "not_allowed"
    assert record_for(jail, f"[{PUBLIC6}]:{OTHER_PORT}")["error_type"] == "not_allowed"
    assert record_for(jail, f"{PRIVATE}:{OTHER_PORT}")["error_type"] == "not_allowed"
    assert_refused_record(jail, f"{PUBLIC}:9", "tcp")


def test_a_flood_of_refused_attempts_is_coalesced_not_lost(jail: Jail, netns):
    """80 ports nothing listens on, and one of them 40 times more: every attempt is refused
    at once and counted, in far fewer records (more destinations than the coalescer follows
    in a second share one record for destination *)."""
    host = "127.0.0.3"
    attempts = [
        {"id": "scan", "kind": "refused", "host": host, "ports": list(range(20000, 20080))},
        {"id": "repeat", "kind": "refused", "host": host, "ports": [20000], "repeat": 40},
    ]
    results = run_probe(jail, attempts, [f"svc.test:{SVC_PORT}"])
    assert results["scan"]["body"] == 80 and results["repeat"]["body"] == 40, results
    assert results["scan"]["seconds"] < 10 and results["repeat"]["seconds"] < 10, results
    records = [r for r in egress_records(jail) if r["decision"] == "deny" and r.get("protocol") == "tcp"]
    assert all(r["destination"].startswith(f"{host}:") or r["destination"] == "*" for r in records), records
    assert sum(r.get("attempts", 1) for r in records) == 120, records
    assert len(records) < 80, len(records)
    assert any(r["destination"] == "*" for r in records), records
    assert denials_in_logs(jail) == 120


def test_a_program_ignoring_http_proxy_reaches_only_allowed_destinations(jail: Jail, netns):
    attempts = [
        {"id": "curl_allowed", "kind": "curl", "url": f"http://svc.test:{SVC_PORT}/", "args": ["--noproxy", "*"]},
        {"id": "curl_other", "kind": "curl", "url": f"http://other.test:{SVC_PORT}/", "args": ["--noproxy", "*"]},
        {"id": "curl_bypass", "kind": "curl", "url": f"http://{PUBLIC}:{SVC_PORT}/", "args": ["--noproxy", "*"]},
        {"id": "curl_bypass_port", "kind": "curl", "url": f"http://{PUBLIC}:{OTHER_PORT}/", "args": ["--noproxy", "*"]},
        {"id": "curl_proxy_allowed", "kind": "curl", "url": f"http://svc.test:{SVC_PORT}/"},
        {"id": "curl_proxy_denied", "kind": "curl", "url": f"http://other.test:{SVC_PORT}/", "args": ["-f"]},
        {"id": "curl_proxy_port", "kind": "curl", "url": f"http://svc.test:{OTHER_PORT}/", "args": ["-f"]},
        # --proxytunnel: CONNECT through the proxy, as for https.
        {"id": "curl_connect_allowed", "kind": "curl", "url": f"http://svc.test:{SVC_PORT}/", "args": ["-p"]},
        {"id": "curl_connect_denied", "kind": "curl", "url": f"http://other.test:{OTHER_PORT}/", "args": ["-p"]},
    ]
    results = run_probe(jail, attempts, [f"svc.test:{SVC_PORT}"])
    assert results["curl_allowed"]["ok"] and "svc-ok" in results["curl_allowed"]["body"], results["curl_allowed"]
    assert results["curl_other"]["errno"] == "curl:6", results["curl_other"]  # could not resolve
    # Reset by the proxy (curl says 7 or 56, as the reset beats its connect or not), with a record.
    assert results["curl_bypass"]["errno"] in ("curl:7", "curl:56"), results["curl_bypass"]
    assert record_for(jail, f"{PUBLIC}:{SVC_PORT}")["error_type"] == "not_allowed"
    assert results["curl_bypass_port"]["errno"] == "curl:7", results["curl_bypass_port"]  # refused: port not listed
    assert results["curl_proxy_allowed"]["ok"] and "svc-ok" in results["curl_proxy_allowed"]["body"], results
    assert results["curl_proxy_denied"]["errno"] == "curl:22" and "403" in results["curl_proxy_denied"]["error"], results
    assert results["curl_proxy_port"]["errno"] == "curl:22", results
    assert results["curl_connect_allowed"]["ok"] and "svc-ok" in results["curl_connect_allowed"]["body"], results
    assert results["curl_connect_denied"]["errno"] == "curl:56" and "403" in results["curl_connect_denied"]["error"], results
    assert record_for(jail, f"other.test:{OTHER_PORT}", method="egress/http-proxy")["error_type"] == "not_allowed"
    assert record_for(jail, f"other.test:{SVC_PORT}", method="egress/http-proxy")["decision"] == "deny"
    assert record_for(jail, f"svc.test:{SVC_PORT}", method="egress/http-proxy")["outcome"] == "ok"


def test_connection_limits_and_idle_timeout(jail: Jail, netns):
    attempts = [
        {"id": "idle", "kind": "idle", "host": "svc.test", "port": SVC_PORT, "sleep": 3.5},
        {"id": "many", "kind": "many", "host": "svc.test", "port": SVC_PORT, "count": 4},
    ]
    results = run_probe(jail, attempts, [f"svc.test:{SVC_PORT}"], extra='max_connections = 2\nidle_timeout = "1s"\n')
    assert not results["idle"]["ok"], results["idle"]
    assert results["many"].get("body") == 2, results["many"]
    records = egress_records(jail)
    assert any(r.get("error_type") == "idle_timeout" for r in records), records
    assert sum(1 for r in records if r.get("error_type") == "max_connections") == 2, records


def test_localhost_names_the_hosts_loopback(jail: Jail, netns, local_http):
    attempts = [
        {"id": "localhost", "kind": "tcp", "host": "localhost", "port": local_http},
        {"id": "other_loopback", "kind": "tcp", "host": "127.0.0.2", "port": local_http},
    ]
    results = run_probe(jail, attempts, [f"localhost:{local_http}"])
    assert results["localhost"]["ok"] and "local-ok" in results["localhost"]["body"], results
    assert results["other_loopback"]["errno"] == "ECONNRESET", results
    assert record_for(jail, f"127.0.0.1:{local_http}")["outcome"] == "ok"


@pytest.fixture
def silent_server():
    """A server on 127.0.0.1 that accepts, reads, and never answers nor closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


def test_teardown_closes_open_egress_connections(jail: Jail, netns, silent_server):
    """The server exits with a connection open to a peer that never closes: the session still
    ends at once, and the connection's record is written."""
    started = time.monotonic()
    results = run_probe(jail, [{"id": "held", "kind": "connect", "host": "127.0.0.1", "port": silent_server}],
                        [f"127.0.0.1:{silent_server}"])
    assert results["held"]["ok"], results
    assert time.monotonic() - started < 8
    record = record_for(jail, f"127.0.0.1:{silent_server}")
    assert record["decision"] == "allow" and record["bytes_in"] == len(b"hello\n"), record


def test_connections_leave_no_file_descriptors_behind(jail: Jail, netns, local_http):
    """mcpjail's open fds while the server sleeps: the same after 40 connections (allowed and
    denied) as after none."""
    from conftest import find_processes

    def fds_during(attempts: list[dict], tag: str) -> int:
        marker = jail.root / f"sleeping-{tag}"
        attempts = attempts + [{"id": "sleep", "kind": "sleep", "marker": str(marker), "seconds": 3}]
        attempts_path = jail.root / f"attempts-fd-{tag}.json"
        attempts_path.write_text(json.dumps(attempts))
        results_path = jail.root / f"results-fd-{tag}.json"
        name = f"fd{tag}"
        jail.write_profile(name, PYTHON, [str(PROBE), str(attempts_path), str(results_path)], stop_timeout="60s",
                           policy=network_table([f"127.0.0.1:{local_http}", f"svc.test:{SVC_PORT}"]))
        proc = subprocess.Popen(with_hosts(jail.root, jail.command(name)), env=jail.env(), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert marker.exists(), "the probe never reached its sleep"
            time.sleep(0.3)  # let the last connections' threads finish
            pids = find_processes(lambda argv: len(argv) > 2 and argv[0].endswith("mcpjail") and argv[2] == name)

            def parent(pid: int) -> int:
                status = Path(f"/proc/{pid}/status").read_text()
                return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))

            # The jail's init is a clone of mcpjail (same argv): mcpjail is the one not parented by another.
            mcpjail = [pid for pid in pids if parent(pid) not in pids]
            assert len(mcpjail) == 1, pids
            return len(os.listdir(f"/proc/{mcpjail[0]}/fd"))
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)

    busy = [{"id": f"ok{i}", "kind": "tcp", "host": "127.0.0.1", "port": local_http} for i in range(20)]
    busy += [{"id": f"no{i}", "kind": "tcp", "host": "127.0.0.2", "port": local_http} for i in range(10)]
    busy += [{"id": f"svc{i}", "kind": "tcp", "host": "svc.test", "port": SVC_PORT} for i in range(10)]
    assert fds_during(busy, "busy") == fds_during([], "idle")


def test_no_network_table_means_no_network(jail: Jail, netns, local_http):
    attempts = [
        {"id": "loopback", "kind": "tcp", "host": "127.0.0.1", "port": local_http},
        {"id": "name", "kind": "dns", "host": "svc.test"},
        {"id": "public", "kind": "tcp", "host": PUBLIC, "port": SVC_PORT},
    ]
    results = run_probe(jail, attempts, [])
    assert results["loopback"]["errno"] == "ECONNREFUSED"
    assert not results["name"]["ok"]
    assert results["public"]["errno"] == "ENETUNREACH"
    assert egress_records(jail) == []


def test_mcp_server_fetch_fetches_allowed_pages_only(jail: Jail, netns):
    """The real mcp-server-fetch, jailed, through the Python SDK client."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    jail.write_profile("fetch", VENV_BIN / "mcp-server-fetch", ["--ignore-robots-txt", "--allow-private-ips"],
                       policy=network_table([f"svc.test:{SVC_PORT}"]))
    cmd = with_hosts(jail.root, jail.command("fetch"))

    async def session() -> tuple:
        params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=jail.env())
        with open(jail.root / "fetch.client-stderr", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as client:
                    with anyio.fail_after(60):
                        await client.initialize()
                        allowed = await client.call_tool("fetch", {"url": f"http://svc.test:{SVC_PORT}/", "raw": True})
                        denied = await client.call_tool("fetch", {"url": f"http://other.test:{SVC_PORT}/", "raw": True})
                        return allowed, denied

    allowed, denied = anyio.run(session)
    assert not allowed.is_error, allowed
    assert "svc-ok" in allowed.content[0].text
    assert denied.is_error, denied
    assert record_for(jail, f"other.test:{SVC_PORT}", method="egress/http-proxy")["decision"] == "deny"
