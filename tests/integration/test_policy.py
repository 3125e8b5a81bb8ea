"""The inspecting relay's policy, end to end through the official Python SDK client and the
jailed fixture server: per-call tokens, the tool allow-list, strict argument schemas, rate
limits, timeouts, secrets kept out of what the client sees, and resource/prompt filters.
Every refusal is checked for its structured type, and for the server never having seen it."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import anyio
import pytest

from conftest import Jail
from mcp import types
from mcp.shared.exceptions import MCPError
from test_python_sdk import connect, text_of

ERA = "2026-07-28"

TOOLS = """
[tools.echo]
[tools.read_records]
[tools.record_write]
scope = "notes:write"
[tools.record_write.arguments]
properties = { amount = { maximum = 100 } }
"""


def refusal(result: types.CallToolResult) -> dict:
    """The error triple of a refused call (and the checks every refusal must pass)."""
    assert result.is_error, result
    error = (result.structured_content or {}).get("error")
    assert isinstance(error, dict), result
    assert set(error) >= {"type", "message", "retryable"}, error
    return error


def writes(jail: Jail, name: str = "fixture") -> list[str]:
    path = jail.fixture_state(name) / "writes.log"
    return path.read_text().splitlines() if path.exists() else []


def run(coro) -> None:
    anyio.run(coro)


# -- tools: allow-list ------------------------------------------------------------------------
def test_hidden_tools_are_absent_from_the_list_and_refused(jail: Jail):
    jail.fixture_profile(policy=TOOLS)

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            listed = sorted(t.name for t in (await session.list_tools()).tools)
            assert listed == ["echo", "read_records", "record_write"]
            for hidden in ["crash", "getenv", "no_such_tool"]:
                error = refusal(await session.call_tool(hidden, {}))
                assert error == {"type": "forbidden", "message": f"tool '{hidden}' is not available", "retryable": False}
            # the server never ran `crash`: it still answers
            assert text_of(await session.call_tool("echo", {"text": "alive"})) == "alive"

    run(main)
    denied = [r for r in jail.audit() if r.get("decision") == "deny"]
    assert [(r["tool"], r["decided_by"], r["error_type"]) for r in denied] == [
        ("crash", "access", "forbidden"), ("getenv", "access", "forbidden"), ("no_such_tool", "access", "forbidden"),
    ]  # fmt: skip
    assert all(r["auth"] == "off" for r in jail.audit())


# -- schemas ----------------------------------------------------------------------------------
def test_arguments_are_validated_strictly_with_the_pointer(jail: Jail):
    jail.fixture_profile(policy=TOOLS)

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            smuggled = refusal(await session.call_tool("record_write", {"key": "a", "amount": 1, "sudo": True}))
            assert smuggled["type"] == "invalid_arguments" and smuggled["retryable"] is False
            assert "pointer" in smuggled and "sudo" in smuggled["message"]
            wrong_type = refusal(await session.call_tool("record_write", {"key": "a", "amount": "ten"}))
            assert (wrong_type["type"], wrong_type["pointer"]) == ("invalid_arguments", "/amount")
            too_big = refusal(await session.call_tool("record_write", {"key": "a", "amount": 500}))
            assert (too_big["type"], too_big["pointer"]) == ("invalid_arguments", "/amount")  # the profile's maximum
            missing = refusal(await session.call_tool("record_write", {"key": "a"}))
            assert missing["type"] == "invalid_arguments"
            assert writes(jail) == [], "a refused call reached the server"
            ok = await session.call_tool("record_write", {"key": "a", "amount": 100})
            assert not ok.is_error, ok

    run(main)
    assert writes(jail) == ["a 100"]
    decided = [r["decided_by"] for r in jail.audit() if r.get("decision") == "deny"]
    assert decided == ["schema"] * 4


@pytest.mark.parametrize("reads_contents", [False, True], ids=["lengths-only", "pattern"])
def test_large_arguments_are_validated_in_full(jail: Jail, reads_contents: bool):
    # Past 1 MiB, a schema that reads no string's contents is checked without a copy of the
    # long strings (their lengths only); one with a pattern is checked on a full parse.
    # Either way the limits hold exactly, deep inside the arguments too.
    text = {"maxLength": 3_000_000}
    if reads_contents:
        text["pattern"] = "^[ab]*$"
    tools = "[tools.echo]\n[tools.echo.arguments]\nproperties = { text = " + (
        "{ maxLength = 3000000, pattern = '^[ab]*$' }" if reads_contents else "{ maxLength = 3000000 }"
    ) + " }\n"
    jail.fixture_profile(policy=tools)
    fits = "é" * 1_500_000 + "ab" * 750_000  # 3,000,000 characters, 4.5 MB of UTF-8
    too_long = fits + "a"

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            if reads_contents:
                fits_pattern = "ab" * 1_500_000
                assert text_of(await session.call_tool("echo", {"text": fits_pattern})) == fits_pattern
                wrong = refusal(await session.call_tool("echo", {"text": fits_pattern[:-1] + "c"}))
                assert (wrong["type"], wrong["pointer"]) == ("invalid_arguments", "/text") and "pattern" in wrong["message"]
            else:
                assert text_of(await session.call_tool("echo", {"text": fits})) == fits
                escaped = "\U0001F600\n" * 1_000_000 + "x" * 1_000_000  # 3,000,000 scalars, escapes in JSON
                assert text_of(await session.call_tool("echo", {"text": escaped})) == escaped
            long = refusal(await session.call_tool("echo", {"text": too_long}))
            assert (long["type"], long["pointer"]) == ("invalid_arguments", "/text") and "longer" in long["message"]

    run(main)
    outcomes = [(r["decision"], r.get("decided_by")) for r in jail.audit() if r.get("tool") == "echo"]
    allow, deny = ("allow", None), ("deny", "schema")
    assert outcomes == ([allow, deny, deny] if reads_contents else [allow, allow, deny]), outcomes


def test_a_tool_added_at_run_time_is_checked_after_list_changed(jail: Jail):
    """Legacy era: there the SDK server sends notifications/tools/list_changed on the session."""
    jail.fixture_profile(policy='[tools]\ndefault = "allow"\n')

    async def main():
        async with connect(jail, "fixture", "legacy") as session:
            assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"  # catalog loaded
            assert "added late" in text_of(await session.call_tool("add_tool", {"name": "late"}))
            await anyio.sleep(0.2)
            result = await session.call_tool("late", {})
            assert not result.is_error and text_of(result) == "i am new", result
            error = refusal(await session.call_tool("late", {"unexpected": 1}))
            assert error["type"] == "invalid_arguments"

    run(main)


# -- auth ---------------------------------------------------------------------------------------
def keypair(jail: Jail, name: str, alg: str = "EdDSA") -> tuple[Path, Path]:
    prefix = jail.root / name
    result = jail.mcpjail("token", "keygen", "--alg", alg, "--out", str(prefix))
    assert result.returncode == 0, result.stderr
    return Path(str(prefix) + ".key"), Path(str(prefix) + ".pub")


def mint(jail: Jail, key: Path, sub: str = "alice", scope: str = "notes:write", ttl: str = "15m",
         aud: str = "mcpjail:notes", iss: str = "https://issuer.test") -> str:  # fmt: skip
    args = ["token", "issue", "--key", str(key), "--sub", sub, "--ttl", ttl, "--aud", aud, "--iss", iss]
    if scope:
        args += ["--scope", scope]
    result = jail.mcpjail(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def auth_policy(public: Path, extra: str = "") -> str:
    return f"""
[auth]
required = true
keys = ["{public}"]
issuer = "https://issuer.test"
audience = "mcpjail:notes"
clock_skew = "0s"
{extra}
""" + TOOLS


def meta(token: str) -> dict:
    return {"dev.mcpjail/authorization": token}


def test_every_call_needs_a_valid_token_with_the_right_scope(jail: Jail):
    key, public = keypair(jail, "issuer")
    other_key, _ = keypair(jail, "attacker")
    jail.fixture_profile(policy=auth_policy(public))
    good = mint(jail, key)
    cases = {
        "missing": (None, "unauthenticated", True),
        "forged": (mint(jail, other_key), "unauthenticated", False),
        "wrong audience": (mint(jail, key, aud="mcpjail:other"), "unauthenticated", False),
        "wrong issuer": (mint(jail, key, iss="https://evil.test"), "unauthenticated", False),
        "under-scoped": (mint(jail, key, scope="notes:read"), "forbidden", False),
        "garbage": ("not.a.jwt", "unauthenticated", False),
    }

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            for label, (token, kind, retryable) in cases.items():
                result = await session.call_tool(
                    "record_write", {"key": label, "amount": 1}, meta=meta(token) if token else None)
                error = refusal(result)
                assert (error["type"], error["retryable"]) == (kind, retryable), (label, error)
            assert writes(jail) == []
            ok = await session.call_tool("record_write", {"key": "good", "amount": 1}, meta=meta("Bearer " + good))
            assert not ok.is_error, ok

    run(main)
    assert writes(jail) == ["good 1"]
    records = [r for r in jail.assert_audit_intact() if r.get("method") == "tools/call"]
    assert records[-1]["subject"] == "alice" and records[-1]["auth"] == "required"
    assert [r["decided_by"] for r in records[:-1]] == ["auth", "auth", "auth", "auth", "access", "auth"]
    everything = jail.audit_path.read_text() + jail.stderr_log("fixture")
    assert good not in everything, "a token reached a log"


def test_an_expiring_token_stops_the_next_call_and_a_rotated_file_resumes(jail: Jail):
    key, public = keypair(jail, "issuer")
    jail.fixture_profile(policy=auth_policy(public))
    token_file = jail.root / "token"
    token_file.write_text(mint(jail, key, ttl="2s") + "\n")
    jail.client_env["MCPJAIL_TOKEN_FILE"] = str(token_file)

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            assert not (await session.call_tool("echo", {"text": "1"})).is_error
            await anyio.sleep(2.5)
            error = refusal(await session.call_tool("echo", {"text": "2"}))
            assert error["type"] == "unauthenticated" and error["retryable"] is True
            assert "expired" in error["message"]
            token_file.write_text(mint(jail, key, ttl="15m"))
            assert text_of(await session.call_tool("echo", {"text": "3"})) == "3"

    run(main)


def test_the_token_never_reaches_the_server(jail: Jail, raw_relay):
    key, public = keypair(jail, "issuer")
    jail.raw_profile(policy=auth_policy(public, '[tools]\ndefault = "allow"'))
    token = mint(jail, key)
    relay = raw_relay("raw")
    reply = relay.request(1, "tools/call", {"name": "any_tool", "arguments": {}, "_meta": {"progressToken": 7, **meta(token)}})
    assert "result" in reply and not reply["result"].get("isError"), reply
    received = jail.received()
    assert token.encode() not in jail.received(own=True)
    assert b'"_meta":{"progressToken":7}' in received
    relay.close_stdin()
    relay.wait()


# -- rate limits and timeouts -------------------------------------------------------------------
def test_a_rate_limit_is_hit_and_recovers(jail: Jail):
    jail.fixture_profile(policy='[tools.echo]\nrate = "2/second"\n')

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            for i in range(2):
                assert text_of(await session.call_tool("echo", {"text": str(i)})) == str(i)
            error = refusal(await session.call_tool("echo", {"text": "2"}))
            assert error["type"] == "rate_limited" and error["retryable"] is True
            assert 0 < error["retry_after"] <= 0.6, error
            await anyio.sleep(error["retry_after"] + 0.1)
            assert text_of(await session.call_tool("echo", {"text": "3"})) == "3"

    run(main)


def test_a_call_past_its_timeout_gets_timeout_and_the_server_a_cancel(jail: Jail):
    jail.fixture_profile(policy='[tools.slow]\ntimeout = "1s"\n[tools.echo]\n')

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            started = time.monotonic()
            error = refusal(await session.call_tool("slow", {"seconds": 30}))
            assert error["type"] == "timeout" and error["retryable"] is True
            assert time.monotonic() - started < 5
            assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"

    run(main)
    assert (jail.fixture_state() / "cancelled").exists(), "the server never got notifications/cancelled"
    timed_out = [r for r in jail.audit() if r.get("tool") == "slow"]
    assert timed_out[0]["error_type"] == "timeout" and timed_out[0]["outcome"] == "no_response"


# -- secrets and error shaping ------------------------------------------------------------------
SECRET = "sk-live-4f9a8b7c6d5e"


def test_secrets_reach_the_server_but_never_the_client_or_the_logs(jail: Jail):
    jail.fixture_profile(policy="""
[secrets]
PLANTED = { env = "HOST_PLANTED" }
[tools.getenv]
[tools.fail_with]
[tools.to_stderr]
[tools.echo]
""")
    jail.client_env["HOST_PLANTED"] = SECRET

    async def main():
        async with connect(jail, "fixture", ERA) as session:
            assert text_of(await session.call_tool("getenv", {"name": "PLANTED"})) == "[REDACTED]"
            assert text_of(await session.call_tool("getenv", {"name": "HOST_PLANTED"})) == "", "the client's env leaked"
            encoded = base64.b64encode(("xy" + SECRET).encode()).decode()
            assert "[REDACTED]" in text_of(await session.call_tool("echo", {"text": encoded}))
            trace = (
                "Traceback (most recent call last):\n"
                '  File "/srv/data/app/server.py", line 10, in call\n'
                "    open(path)\n"
                f"OSError: cannot open /srv/data/app/config.yaml with {SECRET}"
            )
            failed = await session.call_tool("fail_with", {"text": trace})
            assert failed.is_error
            text = text_of(failed)
            assert text.endswith("OSError: cannot open <path> with [REDACTED]"), text
            assert "server.py" not in text and "Traceback" not in text
            await session.call_tool("to_stderr", {"text": f"debug: {SECRET}"})

    run(main)
    log = jail.stderr_log("fixture")
    assert "debug: [REDACTED]" in log and SECRET not in log
    assert SECRET not in jail.audit_path.read_text()


# -- resources and prompts -----------------------------------------------------------------------
def test_resources_and_prompts_follow_their_allow_lists(jail: Jail):
    jail.fixture_profile(policy='[resources]\nallow = ["notes://public/**"]\n[prompts]\nallow = ["review_*"]\n[tools.echo]\n')

    async def main():
        async with connect(jail, "fixture", "legacy") as session:
            uris = [str(r.uri) for r in (await session.list_resources()).resources]
            assert uris == ["notes://public/readme"]
            assert (await session.read_resource("notes://public/readme")).contents[0].text == "public note"
            with pytest.raises(MCPError) as refused:
                await session.read_resource("notes://private/keys")
            assert refused.value.error.data["type"] == "forbidden"
            prompts = [p.name for p in (await session.list_prompts()).prompts]
            assert prompts == ["review_code"]
            with pytest.raises(MCPError):
                await session.get_prompt("deploy", {"target": "prod"})

    run(main)


# -- tool review ----------------------------------------------------------------------------------
def test_block_suspicious_withholds_tools_that_carry_injections(jail: Jail):
    jail.fixture_profile(policy='[tools]\ndefault = "allow"\nblock_suspicious = true\n')

    async def main():
        async with connect(jail, "fixture", "legacy") as session:
            names = [t.name for t in (await session.list_tools()).tools]
            assert "sneaky_add" not in names and "echo" in names
            error = refusal(await session.call_tool("sneaky_add", {"a": 1, "b": 2}))
            assert error["type"] == "forbidden" and "injection" in error["message"]
            assert text_of(await session.call_tool("echo", {"text": "ok"})) == "ok"

    run(main)


def test_an_answer_whose_secret_cannot_be_redacted_is_replaced_by_an_error(jail: Jail, raw_relay):
    """A secret outside a JSON string (here a number) cannot be cut out without breaking the
    line: the line is dropped, and the request still gets an answer instead of hanging."""
    jail.raw_profile(policy='[tools]\ndefault = "allow"\n[secrets]\nPIN = { env = "HOST_PIN" }\n')
    jail.client_env["HOST_PIN"] = "80424242"
    relay = raw_relay("raw")
    leaked = b'{"jsonrpc":"2.0","id":5,"result":{"pin":80424242}}\n'
    reply = relay.request(5, "emit", {"lines_b64": [base64.b64encode(leaked).decode()]})
    assert reply["error"]["data"]["type"] == "internal", reply
    assert b"80424242" not in bytes(relay.stdout_bytes)
    assert "result" in relay.request(6, "ping")  # the relay carries on
