"""The official Python MCP SDK (ClientSession + stdio_client) through `mcpjail run`, in both
protocol eras: legacy (`initialize`) and 2026-07-28 (`server/discover`)."""

from __future__ import annotations

import itertools
import json
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from conftest import Jail, wait_for
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

ERAS = ["legacy", "2026-07-28"]
_connection_numbers = itertools.count(1)
MIB = 1024 * 1024


@asynccontextmanager
async def connect(jail: Jail, name: str, era: str, **session_kw):
    """A ClientSession through `mcpjail run NAME`, handshaken in the given era."""
    cmd = jail.command(name)
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=jail.env())
    # one file per connection: two sessions of the same profile must not overwrite each other
    errlog_path = jail.root / f"{name}-{era}-{next(_connection_numbers)}.client-stderr"
    errlog = open(errlog_path, "w")
    transport_errors: list[Exception] = []

    async def on_message(message) -> None:
        if isinstance(message, Exception):
            transport_errors.append(message)
        notifications = session_kw.get("_notifications")
        if notifications is not None and isinstance(message, types.ServerNotification):
            notifications.append(message)

    kw = {k: v for k, v in session_kw.items() if not k.startswith("_")}
    try:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, message_handler=on_message, **kw) as session:
                with anyio.fail_after(30):
                    if era == "legacy":
                        await session.initialize()
                    else:
                        await session.discover()
                assert session.protocol_version == ("2026-07-28" if era != "legacy" else session.protocol_version)
                session.transport_errors = transport_errors  # type: ignore[attr-defined]
                yield session
    except BaseException:
        errlog.flush()
        print(f"stderr of `mcpjail run {name}` ({errlog_path.name}):\n{errlog_path.read_text()}")
        raise
    finally:
        errlog.close()
    assert not transport_errors, f"the client saw transport errors: {transport_errors}"


def text_of(result: types.CallToolResult) -> str:
    assert result.content, result
    first = result.content[0]
    assert isinstance(first, types.TextContent), first
    return first.text


def tool_records(jail: Jail, tool: str) -> list[dict]:
    return [r for r in jail.audit() if r.get("method") == "tools/call" and r.get("tool") == tool]


# -- mcp-server-time -----------------------------------------------------------------------------
@pytest.mark.parametrize("era", ERAS)
def test_time_server(jail: Jail, era: str):
    jail.time_profile()

    async def main():
        async with connect(jail, "time", era) as session:
            if era == "legacy":
                assert session.protocol_version.startswith("20")
            tools = {t.name for t in (await session.list_tools()).tools}
            assert {"get_current_time", "convert_time"} <= tools
            result = await session.call_tool("get_current_time", {"timezone": "UTC"})
            assert not result.is_error
            payload = json.loads(text_of(result))
            assert payload["timezone"] == "UTC"
            assert payload["datetime"].endswith("+00:00")
            converted = await session.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
            assert not converted.is_error
            assert json.loads(text_of(converted))["target"]["datetime"].endswith("T21:00:00+09:00")
            bad = await session.call_tool("get_current_time", {"timezone": "Not/AZone"})
            assert bad.is_error

    anyio.run(main)
    records = jail.assert_audit_intact()
    calls = [r for r in records if r.get("method") == "tools/call"]
    assert [r["tool"] for r in calls] == ["get_current_time", "convert_time", "get_current_time"]
    assert [r["outcome"] for r in calls] == ["ok", "ok", "tool_error"]
    for r in calls:
        assert r["server"] == "time"
        assert r["bytes_in"] > 0 and r["bytes_out"] > 0
        assert r["latency_us"] >= 0
    assert len({r["session"] for r in records}) == 1


# -- mcp-server-git ------------------------------------------------------------------------------
@pytest.mark.parametrize("era", ERAS)
def test_git_server(jail: Jail, git_repo: Path, era: str):
    jail.git_profile(git_repo)

    async def main():
        async with connect(jail, "git", era) as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            assert {"git_status", "git_log", "git_diff_unstaged"} <= tools
            status = await session.call_tool("git_status", {"repo_path": str(git_repo)})
            assert not status.is_error, status
            assert "hello.txt" in text_of(status)
            log = await session.call_tool("git_log", {"repo_path": str(git_repo), "max_count": 5})
            assert not log.is_error, log
            assert "first commit through mcpjail" in text_of(log)
            diff = await session.call_tool("git_diff_unstaged", {"repo_path": str(git_repo)})
            assert "+hello, changed" in text_of(diff)

    anyio.run(main)
    records = jail.assert_audit_intact()
    assert [r["tool"] for r in records if r.get("method") == "tools/call"] == [
        "git_status",
        "git_log",
        "git_diff_unstaged",
    ]


# -- the fixture server --------------------------------------------------------------------------
async def sampling_callback(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="hello from the client"), model="test-model"
    )


async def elicitation_callback(context, params) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "42"})


async def list_roots_callback(context) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///srv/project", name="project")])


CALLBACKS = dict(
    sampling_callback=sampling_callback,
    elicitation_callback=elicitation_callback,
    list_roots_callback=list_roots_callback,
)


async def fulfil(session: ClientSession, request) -> object:
    """Answer one embedded input request of an `input_required` result (2026-07-28)."""
    if isinstance(request, types.ListRootsRequest):
        return await list_roots_callback(None)
    if isinstance(request, types.CreateMessageRequest):
        return await sampling_callback(None, request.params)
    if isinstance(request, types.ElicitRequest):
        return await elicitation_callback(None, request.params)
    raise AssertionError(f"unexpected input request {request!r}")


@pytest.mark.parametrize("era", ERAS)
def test_fixture_server_to_client_requests(jail: Jail, era: str):
    """roots/list, sampling/createMessage and elicitation/create: standalone server-to-client
    requests on the legacy era, an `input_required` result and a retry on 2026-07-28."""
    jail.fixture_profile()
    rounds = 0

    async def main():
        nonlocal rounds
        async with connect(jail, "fixture", era, **CALLBACKS) as session:
            if era == "legacy":
                result = await session.call_tool("ask", {})
            else:
                result = await session.call_tool("ask", {}, allow_input_required=True)
                while isinstance(result, types.InputRequiredResult):
                    rounds += 1
                    assert rounds <= 5
                    responses = {k: await fulfil(session, r) for k, r in (result.input_requests or {}).items()}
                    result = await session.call_tool(
                        "ask",
                        {},
                        input_responses=responses,
                        request_state=result.request_state,
                        allow_input_required=True,
                    )
            assert isinstance(result, types.CallToolResult)
            assert not result.is_error, result
            assert text_of(result) == "roots=file:///srv/project sample=hello from the client answer=42"

    anyio.run(main)
    if era != "legacy":
        assert rounds >= 1, "2026-07-28 should have gone through at least one input_required round"
    jail.assert_audit_intact()


@pytest.mark.parametrize("era", ERAS)
def test_fixture_progress_and_big_result(jail: Jail, era: str):
    jail.fixture_profile()
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def main():
        async with connect(jail, "fixture", era) as session:
            result = await session.call_tool("progress", {"steps": 5}, progress_callback=on_progress)
            assert text_of(result) == "done 5"
            with anyio.fail_after(60):
                big = await session.call_tool("big", {"mib": 8})
            assert not big.is_error
            text = text_of(big)
            assert len(text) == 8 * MIB and text == "x" * (8 * MIB)
            # and the session carries on after 8 MiB
            assert text_of(await session.call_tool("echo", {"text": "after big"})) == "after big"

    anyio.run(main)
    assert seen == [1, 2, 3, 4, 5]
    records = jail.assert_audit_intact()
    big = [r for r in records if r.get("tool") == "big"]
    assert len(big) == 1 and big[0]["outcome"] == "ok" and big[0]["bytes_out"] > 8 * MIB


@pytest.mark.parametrize("era", ERAS)
def test_fixture_cancellation(jail: Jail, era: str):
    """Abandoning a call makes the SDK send notifications/cancelled; the server sees it."""
    jail.fixture_profile()
    state = jail.fixture_state()

    async def main():
        async with connect(jail, "fixture", era) as session:
            with anyio.move_on_after(2) as scope:
                await session.call_tool("slow", {"seconds": 60})
            assert scope.cancelled_caught
            assert (state / "slow-started").exists()
            with anyio.fail_after(10):
                while not (state / "cancelled").exists():
                    await anyio.sleep(0.05)
            assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"

    anyio.run(main)
    jail.assert_audit_intact()


def test_fixture_tools_list_changed(jail: Jail):
    """notifications/tools/list_changed reaches the client (legacy era: the 2026 era has no
    unsolicited notifications outside subscriptions)."""
    jail.fixture_profile()
    notifications: list = []

    async def main():
        async with connect(jail, "fixture", "legacy", _notifications=notifications) as session:
            before = {t.name for t in (await session.list_tools()).tools}
            assert "brand_new" not in before
            assert text_of(await session.call_tool("add_tool", {"name": "brand_new"})) == "added brand_new"
            with anyio.fail_after(10):
                while not any(isinstance(n, types.ToolListChangedNotification) for n in notifications):
                    await anyio.sleep(0.05)
            after = {t.name for t in (await session.list_tools()).tools}
            assert "brand_new" in after
            assert text_of(await session.call_tool("brand_new", {})) == "i am new"

    anyio.run(main)


@pytest.mark.parametrize("era", ERAS)
def test_fixture_garbage_on_stdout_is_dropped(jail: Jail, era: str):
    """A non-JSON line on the server's stdout never reaches the client: the SDK sees no
    transport error (connect() asserts that) and the session carries on."""
    jail.fixture_profile()

    async def main():
        async with connect(jail, "fixture", era) as session:
            assert text_of(await session.call_tool("garbage", {})) == "after garbage"
            assert text_of(await session.call_tool("echo", {"text": "ok"})) == "ok"

    anyio.run(main)


@pytest.mark.parametrize("era", ERAS)
def test_fixture_crash_mid_call(jail: Jail, era: str):
    """The server dies mid tools/call: the client gets a structured server_unavailable tool error."""
    jail.fixture_profile()

    async def main():
        async with connect(jail, "fixture", era) as session:
            with anyio.fail_after(20):
                result = await session.call_tool("crash", {})
            assert result.is_error
            error = (result.structured_content or {}).get("error")
            assert error is not None, result
            assert error["type"] == "server_unavailable"
            assert error["retryable"] is True
            assert isinstance(error["message"], str) and error["message"]
            assert "Traceback" not in text_of(result)

    anyio.run(main)
    records = jail.assert_audit_intact()
    crash = [r for r in records if r.get("tool") == "crash"]
    assert len(crash) == 1
    assert crash[0]["outcome"] == "no_response"


# -- the shipped profiles ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["time", "REFERENCE"])
def test_shipped_time_profiles(jail: Jail, name: str):
    """profiles/time.toml and profiles/REFERENCE.toml work out of the box (after `make deps`)."""
    from conftest import MCPJAIL, ROOT

    params = StdioServerParameters(
        command=str(MCPJAIL), args=["run", name, "--profiles", str(ROOT / "profiles")], env=jail.env()
    )

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("get_current_time", {"timezone": "UTC"})
                assert json.loads(text_of(result))["timezone"] == "UTC"

    anyio.run(main)
    records = jail.assert_audit_intact()
    assert any(r.get("tool") == "get_current_time" and r["server"] == name for r in records)


def test_shipped_git_profile(jail: Jail):
    """profiles/git.toml serves this checkout."""
    from conftest import MCPJAIL, ROOT

    params = StdioServerParameters(
        command=str(MCPJAIL), args=["run", "git", "--profiles", str(ROOT / "profiles")], env=jail.env()
    )

    async def main():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                log = await session.call_tool("git_log", {"repo_path": str(ROOT), "max_count": 1})
                assert not log.is_error, log
                assert "Commit:" in text_of(log) or "commit" in text_of(log).lower()

    anyio.run(main)
    jail.assert_audit_intact()
