"""mcpjail run as an ordinary user: the same relay, state under $XDG_STATE_HOME.

As root (CI), the test drops to uid/gid 65534 with setpriv and no supplementary groups;
as an ordinary user it runs as that user. Either way no MCPJAIL_STATE_DIR is set, so
the state directory is resolved the way a user's MCP client would get it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import MCPJAIL, VENV_BIN

NOBODY = 65534


@pytest.fixture
def user_home():
    # Not under pytest's tmp_path: that is 0700 and owned by the runner.
    home = Path(tempfile.mkdtemp(prefix="mcpjail-user-"))
    os.chmod(home, 0o755)
    profiles = home / "profiles"
    profiles.mkdir()
    (profiles / "time.toml").write_text(
        "[server]\n"
        f"command = {json.dumps(str(VENV_BIN / 'mcp-server-time'))}\n"
        'args = ["--local-timezone=UTC"]\n'
        'env = { TZ = "UTC" }\n'
        "pinned = false\n"
        "[filesystem]\n"
        f"read_only = [\"/usr\", {json.dumps(str(VENV_BIN.parent))}]\n"
        # cgroup v1 hosts give ordinary users no cgroup: rlimits only, and said so.
        "[limits]\n"
        'enforce = "best-effort"\n'
        "[tools.get_current_time]\n"
    )
    if os.geteuid() == 0:
        for path in [home, profiles, profiles / "time.toml"]:
            os.chown(path, NOBODY, NOBODY)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test as an ordinary user"
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]


def test_run_as_an_ordinary_user_keeps_state_in_xdg_state_home(user_home: Path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(user_home)}
    session = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        b'"capabilities":{},"clientInfo":{"name":"ordinary","version":"1"}}}\n'
        b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
        b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_current_time","arguments":{"timezone":"UTC"}}}\n'
    )
    proc = subprocess.Popen(
        as_user([str(MCPJAIL), "run", "time", "--profiles", str(user_home / "profiles")]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    proc.stdin.write(session)
    proc.stdin.flush()
    replies = {}
    while len(replies) < 2:
        line = proc.stdout.readline()
        assert line, f"mcpjail ended early: {proc.stderr.read().decode(errors='replace')}"
        message = json.loads(line)
        replies[message["id"]] = message
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert replies[1]["result"]["serverInfo"]["name"] == "mcp-time"
    assert replies[2]["result"]["isError"] is False
    assert "UTC" in replies[2]["result"]["content"][0]["text"]

    state = user_home / ".local" / "state" / "mcpjail"
    audit = state / "audit.jsonl"
    assert audit.exists(), f"no audit log in {state}"
    if os.geteuid() == 0:
        assert audit.stat().st_uid == NOBODY
        assert (audit.stat().st_mode & 0o777) == 0o600
        assert (state.stat().st_mode & 0o777) == 0o700
    records = [json.loads(l) for l in audit.read_text().splitlines()]
    assert [r["method"] for r in records] == ["initialize", "tools/call"]
    assert records[1]["tool"] == "get_current_time" and records[1]["outcome"] == "ok"
    verify = subprocess.run(as_user([str(MCPJAIL), "logs", "--verify"]), env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "2 records, chain intact" in verify.stdout


def test_an_ordinary_user_pins_and_runs_a_pinned_server(user_home: Path):
    """The pin check as an ordinary user: the jail's root reaches mcpjail over a socket, so
    no ptrace-level access to the jail's process is needed."""
    package = sorted((VENV_BIN.parent / "lib").glob("python3*/site-packages/mcp_server_time"))[0]
    profiles = user_home / "profiles"
    profile = profiles / "pinned.toml"
    profile.write_text(
        (profiles / "time.toml").read_text().replace("pinned = false\n", f"code = [{json.dumps(str(package))}]\n")
    )
    lock = profiles / "pinned.lock"
    if os.geteuid() == 0:
        os.chown(profile, NOBODY, NOBODY)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(user_home)}
    pinned = subprocess.run(
        as_user([str(MCPJAIL), "pin", "pinned", "--profiles", str(profiles)]), env=env, capture_output=True, text=True
    )
    assert pinned.returncode == 0, pinned.stderr
    assert lock.exists()
    session = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        b'"capabilities":{},"clientInfo":{"name":"ordinary","version":"1"}}}\n'
    )
    proc = subprocess.Popen(
        as_user([str(MCPJAIL), "run", "pinned", "--profiles", str(profiles)]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    proc.stdin.write(session)
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, f"mcpjail ended early: {proc.stderr.read().decode(errors='replace')}"
    assert json.loads(line)["result"]["serverInfo"]["name"] == "mcp-time"
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    audit = user_home / ".local" / "state" / "mcpjail" / "audit.jsonl"
    # pin's own jailed review run (initialize, tools/list) is audited too, then the session
    assert [json.loads(l)["pinned"] for l in audit.read_text().splitlines()] == [True, True, True]


def test_an_ordinary_users_pinned_session_stops_when_its_code_changes(user_home: Path):
    """The code watch needs no privilege: a change to the pinned code on the host while an
    ordinary user's session runs stops it (exit 78), as it does for root."""
    package = sorted((VENV_BIN.parent / "lib").glob("python3*/site-packages/mcp_server_time"))[0]
    code = user_home / "mcp_server_time"
    shutil.copytree(package, code, ignore=shutil.ignore_patterns("__pycache__"))
    profiles = user_home / "profiles"
    profile = profiles / "watched.toml"
    profile.write_text(
        (profiles / "time.toml").read_text()
        .replace("pinned = false\n", f"code = [{json.dumps(str(code))}]\n")
        .replace('read_only = ["/usr", ', f'read_only = ["/usr", {json.dumps(str(code))}, ')
        .replace('env = { TZ = "UTC" }', f'env = {{ TZ = "UTC", PYTHONPATH = {json.dumps(str(user_home))} }}')
    )
    if os.geteuid() == 0:
        os.chown(profile, NOBODY, NOBODY)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(user_home)}
    pinned = subprocess.run(
        as_user([str(MCPJAIL), "pin", "watched", "--profiles", str(profiles), "--no-tools"]), env=env, capture_output=True, text=True
    )
    assert pinned.returncode == 0, pinned.stderr
    proc = subprocess.Popen(
        as_user([str(MCPJAIL), "run", "watched", "--profiles", str(profiles)]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        proc.stdin.write(
            b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
            b'"capabilities":{},"clientInfo":{"name":"ordinary","version":"1"}}}\n'
        )
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, f"mcpjail ended early: {proc.stderr.read().decode(errors='replace')}"
        assert json.loads(line)["result"]["serverInfo"]["name"] == "mcp-time"
        started = time.monotonic()
        (code / "added.py").write_text("print('never reviewed')\n")
        assert proc.wait(timeout=5) == 78
        assert time.monotonic() - started < 1.0
        assert "its pinned code changed on the host while it ran" in proc.stderr.read().decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()
