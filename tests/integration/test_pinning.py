"""Version pinning, end to end: `mcpjail pin NAME` writes NAME.lock, and `mcpjail run NAME`
verifies the server's command and code against it before the server starts, on the files
the jail sees, refusing on any difference with the first differing file named.

The servers: mcp-server-time from the project's venv (its package directory pinned), and
the fixture server copied into a directory of the test's own (so that a test can change a
byte of it). The swap tests use a debug-build hook (MCPJAIL_DEBUG_PIN_HOOK): a program
mcpjail runs once the jail's file system is complete (the code already bound into it) and
before the check, to swap a file after the jail was built from it. The watch tests change
the code while the server runs, and a free-running swapper races real starts.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import stat
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import FIXTURES, JAILED_UID, PYTHON, VENV_BIN, Jail, RawRelay, wait_for

INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pin-test", "version": "1"}}


def site_packages() -> Path:
    found = sorted((VENV_BIN.parent / "lib").glob("python3*/site-packages"))
    assert found, "no site-packages in the venv"
    return found[0]


def pinned_fixture(jail: Jail, name: str = "pinned", pinned: bool = True) -> Path:
    """The fixture server copied into `code/` (pinned, read-only in the jail), its state in
    `rw/` (the jail's only writable path, outside the pinned code). Returns the code dir."""
    code = jail.root / f"{name}-code"
    code.mkdir()
    shutil.copy(FIXTURES / "fixture_server.py", code / "fixture_server.py")
    (code / "VERSION").write_text("1.0.0\n")
    (code / "tools").symlink_to("fixture_server.py")
    rw = jail.root / f"{name}-rw"
    rw.mkdir()
    if os.geteuid() == 0:
        os.chown(rw, JAILED_UID, JAILED_UID)
    jail.write_profile(
        name, PYTHON, [str(code / "fixture_server.py"), "--state", str(rw / "state")],
        read_write=[str(rw)], code=[code], pinned=pinned,
    )
    return code


def run_session(jail: Jail, name: str) -> tuple[int, str, list[dict]]:
    """initialize + tools/call echo through `mcpjail run NAME`, each reply awaited before
    the next request; then EOF. Returns (exit status, mcpjail's stderr, replies)."""
    relay = RawRelay(jail, name)
    replies: list[dict] = []
    try:
        try:
            relay.send_json({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT})
        except BrokenPipeError:  # refused before it read anything
            pass
        first = relay.lines.get(timeout=30)
        if first is not None:
            replies.append(json.loads(first))
            relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
            replies.append(relay.request(2, "tools/call", {"name": "echo", "arguments": {"text": "hi"}}))
        relay.close_stdin()
        status = relay.wait(timeout=30)
        return status, relay.client_stderr(), replies
    finally:
        relay.kill()


def assert_started_nothing(jail: Jail, name: str, code: int, stderr: str, replies: list[dict]) -> None:
    assert code != 0, stderr
    assert replies == [], replies
    assert jail.audit() == [], "a refused start wrote audit records"
    assert not (jail.state / "logs" / f"{name}.stderr.log").exists(), "the server was started"


# -- a real server ---------------------------------------------------------------------------
def test_a_pinned_real_server_runs_and_its_records_say_pinned(jail: Jail):
    package = site_packages() / "mcp_server_time"
    jail.write_profile("time", VENV_BIN / "mcp-server-time", ["--local-timezone=UTC"], code=[package], pinned=True)
    pinned = jail.pin("time")
    assert "time.lock: written" in pinned.stdout
    lock = json.loads(jail.lock_path("time").read_text())
    assert lock["format"] == 1
    assert lock["command"]["path"] == str(VENV_BIN / "mcp-server-time")
    entries = lock["code"][str(package)]["entries"]
    assert entries["."].startswith("d ") and entries["server.py"].startswith("f 0644 ")

    relay = RawRelay(jail, "time")
    try:
        assert relay.request(1, "initialize", INIT)["result"]["serverInfo"]["name"] == "mcp-time"
        relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
        reply = relay.request(2, "tools/call", {"name": "get_current_time", "arguments": {"timezone": "UTC"}})
        assert not reply["result"].get("isError"), reply
        relay.close_stdin()
        assert relay.wait() == 0
    finally:
        relay.kill()
    records = jail.assert_audit_intact()
    assert {r["pinned"] for r in records} == {True}


# -- refusals --------------------------------------------------------------------------------
def test_one_changed_byte_refuses_the_start_and_names_the_file(jail: Jail):
    code = pinned_fixture(jail)
    jail.pin("pinned")
    status, stderr, replies = run_session(jail, "pinned")
    assert status == 0, stderr
    assert replies[-1]["result"]["content"][0]["text"] == "hi"
    jail.audit_path.unlink()
    shutil.rmtree(jail.state / "logs")

    # One byte, same size; the mtime put back as it was: the ctime still tells.
    target = code / "fixture_server.py"
    before = target.stat()
    data = bytearray(target.read_bytes())
    at = data.index(b"fixture")  # in the module's docstring: the server still runs
    data[at] = ord("F")
    target.write_bytes(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns

    status, stderr, replies = run_session(jail, "pinned")
    assert_started_nothing(jail, "pinned", status, stderr, replies)
    assert f"mcpjail: refusing to start 'pinned': its pinned code changed in the jail: {target}: expected file mode 0644 sha256:" in stderr
    assert ", found file mode 0644 sha256:" in stderr
    assert "(hint: review the change; if it is wanted, run `mcpjail pin pinned`" in stderr

    # `pin --check` agrees and writes nothing; re-pinning accepts the change.
    check = jail.mcpjail("pin", "pinned", "--check", "--profiles", str(jail.profiles))
    assert check.returncode == 1 and str(target) in check.stderr
    repinned = jail.pin("pinned")
    assert "updated (1 entry changed, the first " + str(target) + ")" in repinned.stdout
    status, stderr, _ = run_session(jail, "pinned")
    assert status == 0, stderr


@pytest.mark.parametrize("change", ["new file", "removed file", "mode", "link target", "command"])
def test_every_kind_of_change_is_refused(jail: Jail, change: str):
    code = pinned_fixture(jail)
    jail.pin("pinned")
    named = {
        "new file": code / "extra.py",
        "removed file": code / "VERSION",
        "mode": code / "VERSION",
        "link target": code / "tools",
        "command": PYTHON,
    }[change]
    if change == "new file":
        named.write_text("")
    elif change == "removed file":
        named.unlink()
    elif change == "mode":
        named.chmod(0o666)
    elif change == "link target":
        named.unlink()
        named.symlink_to("VERSION")
    else:  # another interpreter: the lock pins the venv's python as its link leads
        profile = jail.profiles / "pinned.toml"
        other = shutil.which("sh")
        profile.write_text(profile.read_text().replace(json.dumps(str(PYTHON)), json.dumps(other), 1))
        named = Path(other)
    status, stderr, replies = run_session(jail, "pinned")
    assert_started_nothing(jail, "pinned", status, stderr, replies)
    assert str(named) in stderr, stderr
    if change == "command":
        assert "is for another version of profile 'pinned'" in stderr and "mcpjail pin pinned" in stderr


def test_the_check_sees_what_the_jail_sees(jail: Jail):
    """A tmpfs the profile mounts over part of the code hides those files from the server:
    the check, made on the jail's own view, finds them missing."""
    code = pinned_fixture(jail)
    (code / "lib").mkdir()
    (code / "lib" / "helper.py").write_text("HELPER = 1\n")
    jail.pin("pinned")
    profile = jail.profiles / "pinned.toml"
    profile.write_text(profile.read_text() + f"\n[filesystem.tmpfs]\n{json.dumps(str(code / 'lib'))} = \"1M\"\n")
    status, stderr, replies = run_session(jail, "pinned")
    assert_started_nothing(jail, "pinned", status, stderr, replies)
    # The tmpfs's own mode first, then the file it hides.
    assert f"its pinned code changed in the jail: {code / 'lib'}: expected directory mode " in stderr, stderr
    assert "found directory mode 1777 (and 1 more difference)" in stderr, stderr


def test_a_profile_without_a_lock_refuses_with_a_hint(jail: Jail):
    pinned_fixture(jail)
    status, stderr, replies = run_session(jail, "pinned")
    assert_started_nothing(jail, "pinned", status, stderr, replies)
    lock = jail.lock_path("pinned")
    assert stderr.strip() == (
        f"mcpjail: profile 'pinned' is pinned but has no lock: {lock} does not exist "
        "(hint: review the server, then run `mcpjail pin pinned`; or set [server] pinned = false to run it unverified)"
    )


def test_a_hand_edited_lock_is_refused(jail: Jail):
    pinned_fixture(jail)
    jail.pin("pinned")
    lock = jail.lock_path("pinned")
    text = lock.read_text()
    lock.write_text(text.replace('"VERSION": "f 0644 ', '"VERSION": "f 0600 '))
    status, stderr, replies = run_session(jail, "pinned")
    assert_started_nothing(jail, "pinned", status, stderr, replies)
    assert "invalid lock" in stderr and "does not match its entries" in stderr


# -- unpinned --------------------------------------------------------------------------------
def test_pinned_false_runs_and_every_record_and_check_say_so(jail: Jail):
    jail.fixture_profile()  # conftest writes pinned = false unless asked otherwise
    status, stderr, replies = run_session(jail, "fixture")
    assert status == 0, stderr
    assert replies[-1]["result"]["content"][0]["text"] == "hi"
    records = jail.assert_audit_intact()
    assert len(records) >= 2
    assert all(r["pinned"] is False for r in records), records
    check = jail.mcpjail("check", "fixture", "--profiles", str(jail.profiles))
    assert check.returncode == 0
    assert "pinned = false  # UNPINNED" in check.stdout
    as_json = json.loads(jail.mcpjail("check", "fixture", "--json", "--profiles", str(jail.profiles)).stdout)
    assert as_json["server"]["pinned"] is False


def test_check_says_whether_the_lock_exists(jail: Jail):
    pinned_fixture(jail)
    before = jail.mcpjail("check", "pinned", "--profiles", str(jail.profiles))
    assert before.returncode == 0
    assert "# pins: no pinned.lock: `mcpjail run pinned` refuses to start until `mcpjail pin pinned`" in before.stdout
    jail.pin("pinned")
    after = jail.mcpjail("check", "pinned", "--profiles", str(jail.profiles))
    assert f"# pins: {jail.lock_path('pinned')} (format 1): the command and 1 code path" in after.stdout


# -- determinism -----------------------------------------------------------------------------
def test_pin_twice_is_byte_identical(jail: Jail):
    pinned_fixture(jail)
    first = jail.pin("pinned")
    assert ": written" in first.stdout
    data = jail.lock_path("pinned").read_bytes()
    os.utime(jail.root / "pinned-code" / "VERSION")  # times are not part of the pins
    second = jail.pin("pinned")
    assert ": unchanged" in second.stdout
    assert jail.lock_path("pinned").read_bytes() == data
    # From a cold state directory too: the cache never changes what is written.
    shutil.rmtree(jail.state / "pins-cache")
    jail.pin("pinned")
    assert jail.lock_path("pinned").read_bytes() == data
    assert data.endswith(b"\n  \"format\": 1\n}\n")


# -- the swap race ---------------------------------------------------------------------------
def swap_hook(jail: Jail, target: Path, contents: bytes) -> Path:
    """A program that renames `contents` over `target`: run by mcpjail (debug build) after
    the jail's mounts and before its check."""
    replacement = target.with_name(target.name + ".swap")
    replacement.write_bytes(contents)
    replacement.chmod(stat.S_IMODE(target.stat().st_mode))
    hook = jail.root / "swap-hook.sh"
    marker = jail.root / "hook-ran"
    hook.write_text(f"#!/bin/sh\nmv {json.dumps(str(replacement))} {json.dumps(str(target))}\ntouch {json.dumps(str(marker))}\n")
    hook.chmod(0o755)
    jail.client_env["MCPJAIL_DEBUG_PIN_HOOK"] = str(hook)
    return marker


def test_a_file_swapped_after_the_jail_was_built_is_caught_by_the_check(jail: Jail):
    code = pinned_fixture(jail)
    jail.pin("pinned")
    target = code / "fixture_server.py"
    marker = swap_hook(jail, target, target.read_bytes() + b"\nraise SystemExit('swapped in')\n")
    status, stderr, replies = run_session(jail, "pinned")
    assert marker.exists(), "the debug hook did not run (is this a debug build?)"
    assert_started_nothing(jail, "pinned", status, stderr, replies)
    assert f"its pinned code changed in the jail: {target}: expected file mode 0644 sha256:" in stderr, stderr


def test_a_swap_to_the_verified_contents_runs_the_verified_code(jail: Jail):
    code = pinned_fixture(jail)
    jail.pin("pinned")
    target = code / "fixture_server.py"
    inode = target.stat().st_ino
    marker = swap_hook(jail, target, target.read_bytes())
    status, stderr, replies = run_session(jail, "pinned")
    assert marker.exists(), "the debug hook did not run (is this a debug build?)"
    assert target.stat().st_ino != inode  # really another file, with the verified contents
    assert status == 0, stderr
    assert replies[-1]["result"]["content"][0]["text"] == "hi"
    assert all(r["pinned"] is True for r in jail.assert_audit_intact())


# -- changes while it runs -------------------------------------------------------------------
CHANGED_WHILE_RUNNING = "its pinned code changed on the host while it ran"


def start_slow_call(jail: Jail, name: str) -> RawRelay:
    """A session through initialize and one echo, with a 30 s `slow` call in flight."""
    relay = RawRelay(jail, name)
    assert "result" in relay.request(1, "initialize", INIT)
    relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert relay.request(2, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})["result"]["content"][0]["text"] == "hi"
    relay.send_json({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 30}}})
    started = jail.root / f"{name}-rw" / "state" / "slow-started"
    assert wait_for(started.exists, timeout=10), "the slow call never started"
    return relay


@pytest.mark.parametrize("change", ["added", "written", "renamed over"])
def test_a_change_to_pinned_code_while_it_runs_stops_the_session(jail: Jail, change: str):
    code = pinned_fixture(jail)
    jail.pin("pinned")
    relay = start_slow_call(jail, "pinned")
    try:
        started = time.monotonic()
        if change == "added":
            (code / "added.py").write_text("print('never reviewed')\n")
        elif change == "written":
            with open(code / "VERSION", "a") as version:
                version.write("1.0.1\n")
        else:
            (code / "VERSION.new").write_text("2.0.0\n")
            os.rename(code / "VERSION.new", code / "VERSION")
        reply = relay.recv(timeout=5)
        elapsed = time.monotonic() - started
        error = reply["result"]["structuredContent"]["error"]
        assert reply["id"] == 3 and error["type"] == "server_revoked" and error["retryable"] is False, reply
        assert "pinned code changed" in error["message"]
        assert relay.wait(timeout=5) == 78
        assert elapsed < 1.0, f"the change was acted on after {elapsed:.2f} s"
    finally:
        relay.kill()
    assert CHANGED_WHILE_RUNNING in relay.client_stderr()
    stopped = [r for r in jail.assert_audit_intact() if r.get("request_id") in (3, "3")]
    assert stopped and stopped[-1]["decided_by"] == "pins" and stopped[-1]["error_type"] == "server_revoked"


def test_without_pins_the_same_change_goes_unnoticed(jail: Jail):
    # The companion of the test above: the same change to a server that is not pinned does
    # not stop it, so what stops the pinned one is the watch.
    code = pinned_fixture(jail, pinned=False)
    relay = RawRelay(jail, "pinned")
    try:
        assert "result" in relay.request(1, "initialize", INIT)
        relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
        relay.send_json({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 1.5}}})
        assert wait_for((jail.root / "pinned-rw" / "state" / "slow-started").exists, timeout=10)
        (code / "added.py").write_text("print('never reviewed')\n")
        reply = relay.recv(timeout=10)
        assert reply["id"] == 3 and not reply["result"].get("isError"), reply
        relay.close_stdin()
        assert relay.wait(timeout=10) == 0
    finally:
        relay.kill()
    assert CHANGED_WHILE_RUNNING not in relay.client_stderr()


def race_session(jail: Jail, name: str, hold: float = 0.0) -> tuple[int, str, list[dict], tuple[float, float] | None]:
    """Like run_session, for a session that may be refused or stopped at any point; waits
    `hold` seconds between the initialize answer and the echo call. Also returns when the
    server was surely running its exec'd code: from the initialize answer to the echo answer
    (None if it never answered both)."""
    relay = RawRelay(jail, name)
    replies: list[dict] = []
    running = None
    try:
        try:
            relay.send_json({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT})
            line = relay.lines.get(timeout=30)
            if line is not None:
                answered = time.monotonic()
                replies.append(json.loads(line))
                relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
                time.sleep(hold)
                relay.send_json({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}})
                line = relay.lines.get(timeout=30)
                if line is not None:
                    replies.append(json.loads(line))
                    running = (answered, time.monotonic())
        except BrokenPipeError:
            pass
        relay.close_stdin()
        return relay.wait(timeout=30), relay.client_stderr(), replies, running
    finally:
        relay.kill()


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned-companion"])
def test_a_free_running_swapper_never_gets_unverified_code_run_unnoticed(jail: Jail, pinned: bool):
    """A thread renames a changed copy of the server over the verified one and back, at
    random instants, while sessions start one after another for 15 s. Pinned: whenever the changed
    copy ran (it appends to a marker before anything else), that session must have been
    stopped for it; every other session was refused at its check or served the verified
    code, and none went on while the code changed under it (from its initialize answer to
    its echo answer, 0.1 s apart). The companion runs the same race unpinned, to show the
    marker catches the changed copy running and that changes do land in running sessions
    when nothing stops them."""
    code = pinned_fixture(jail, pinned=pinned)
    if pinned:
        jail.pin("pinned")
    target = code / "fixture_server.py"
    original = target.read_bytes()
    marker = jail.root / "pinned-rw" / "swapped-ran"
    future = b"from __future__ import annotations\n"
    assert future in original
    swapped = original.replace(future, future + f"open({json.dumps(str(marker))}, 'a').write('x')\n".encode(), 1)
    stop = threading.Event()
    changes: list[tuple[float, float]] = []  # when the code directory was being changed

    def swapper() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            # A burst of renames, ending on either copy, then a quiet spell long enough for
            # whole sessions to start and end.
            for _ in range(rng.randint(1, 6)):
                began = time.monotonic()
                staged = target.with_name(".staged")
                staged.write_bytes(rng.choice([swapped, original]))
                staged.chmod(0o644)
                os.rename(staged, target)
                changes.append((began, time.monotonic()))
                time.sleep(rng.uniform(0, 0.02))
            stop.wait(rng.uniform(0.3, 2.5))

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    outcomes: Counter = Counter()
    try:
        deadline = time.monotonic() + 15
        # The unpinned companion runs on (up to 60 s in all) until its probes have seen both
        # breaches: whether a random swap overlaps a 0.1 s session is chance.
        evidence_deadline = deadline + (0 if pinned else 45)
        while time.monotonic() < deadline or (
            time.monotonic() < evidence_deadline
            and not (outcomes["changed copy ran"] and outcomes["served while the code changed"])
        ):
            ran_before = marker.stat().st_size if marker.exists() else 0
            status, stderr, replies, running = race_session(jail, "pinned", hold=0.1)
            ran = (marker.stat().st_size if marker.exists() else 0) > ran_before
            if status == 0:
                outcome = "served"
                assert replies and replies[-1]["result"]["content"][0]["text"] == "hi", replies
                changed_while_running = running is not None and any(
                    began < running[1] and ended > running[0] for began, ended in list(changes))
                outcomes["served while the code changed"] += changed_while_running
                if pinned:
                    assert not changed_while_running, "a session went on while its pinned code changed"
            elif status == 78 and CHANGED_WHILE_RUNNING in stderr:
                outcome = "stopped"
            elif "refusing to start" in stderr or "cannot verify the pins" in stderr:
                outcome = "refused"
            else:
                log = jail.state / "logs" / "pinned.stderr.log"
                raise AssertionError(f"unexpected end: status {status}, stderr:\n{stderr}\nserver: {log.read_text()[-800:] if log.exists() else ''}")
            outcomes[outcome] += 1
            outcomes["changed copy ran"] += ran
            if pinned and ran:
                assert outcome == "stopped", f"the changed copy ran in a session that was {outcome}:\n{stderr}"
    finally:
        stop.set()
        thread.join(timeout=10)
        target.write_bytes(original)
    print(f"outcomes: {dict(outcomes)}")
    if pinned:
        # The race was run: starts were served, and others refused or stopped.
        assert outcomes["served"] > 0 and outcomes["refused"] + outcomes["stopped"] > 0, outcomes
    else:
        assert outcomes["refused"] + outcomes["stopped"] == 0 and outcomes["changed copy ran"] > 0, outcomes
        assert outcomes["served while the code changed"] > 0, outcomes


def test_a_watch_that_cannot_be_armed_refuses_the_start_and_says_why(jail: Jail):
    """One open file per watched directory: with a hard limit of 64 open files and 100
    directories of pinned code, the watch cannot be armed, and the start is refused (not run
    unwatched). The same start with the usual limit runs."""
    code = pinned_fixture(jail)
    for index in range(100):
        (code / "pkg" / f"d{index:03d}").mkdir(parents=True)
    jail.pin("pinned")

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    refused = subprocess.run(
        jail.command("pinned"), input=b"", capture_output=True, env=jail.env(), preexec_fn=limited, timeout=60)
    stderr = refused.stderr.decode(errors="replace")
    assert refused.returncode != 0, stderr
    assert "refusing to start 'pinned': cannot watch its pinned code for changes:" in stderr, stderr
    assert "Too many open files" in stderr and "ulimit -n" in stderr, stderr
    assert not (jail.state / "logs" / "pinned.stderr.log").exists(), "the server was started"
    status, stderr, replies = run_session(jail, "pinned")
    assert status == 0 and replies[-1]["result"]["content"][0]["text"] == "hi", stderr
