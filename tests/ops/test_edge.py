"""The edge blocklist (G39): what `silver-auth edge block|unblock` writes is a snippet Caddy accepts, in a
canonical form, changed only when the list does not already say so, and replaced whole."""

from __future__ import annotations

import ipaddress
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from silver_auth.ops.edge import (
    HEADER,
    BlocklistError,
    block,
    is_internal,
    parse_network,
    read_blocklist,
    reload_edge,
    unblock,
)
from tests.test_cli import cli_env, run_many

NOW = datetime(2026, 12, 1, 18, 37, 15, tzinfo=UTC)
REPO_BLOCKLIST = Path(__file__).resolve().parents[2] / "deploy" / "caddy" / "blocklist.caddy"


@pytest.fixture
def blocklist(tmp_path: Path) -> Path:
    path = tmp_path / "caddy" / "blocklist.caddy"
    path.parent.mkdir()
    shutil.copy(REPO_BLOCKLIST, path)
    return path


def test_g39_the_shipped_blocklist_is_empty_and_in_the_managed_form() -> None:
    assert REPO_BLOCKLIST.read_text() == HEADER
    assert read_blocklist(REPO_BLOCKLIST) == []


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("203.0.113.7", "203.0.113.7/32"),
        (" 198.51.100.0/24 ", "198.51.100.0/24"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("2001:db8::/48", "2001:db8::/48"),
        ("10.0.0.0/8", "10.0.0.0/8"),
    ],
)
def test_addresses_and_networks_are_canonical_networks(text: str, network: str) -> None:
    assert str(parse_network(text)) == network


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1/8", "has host bits set: did you mean 10.0.0.0/8?"),
        ("0.0.0.0/0", "wider than /8"),
        ("::/0", "wider than /16"),
        ("256.1.1.1", "is not an IP address or network"),
        ("example.com", "is not an IP address or network"),
        ("203.0.113.7 # x", "is not an IP address or network"),
        ("", "is not an IP address or network"),
    ],
)
def test_bad_addresses_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(BlocklistError, match=message.replace("?", r"\?").replace("/", "/")):
        parse_network(text)


def test_g39_block_then_unblock_round_trips_through_the_file(blocklist: Path) -> None:
    first = block(blocklist, "203.0.113.7", "credential stuffing", NOW)
    second = block(blocklist, "2001:db8::/48", "", NOW)
    assert first.changed and second.changed
    assert blocklist.read_text() == HEADER + (
        "@edge_blocked {\n"
        "\tremote_ip 203.0.113.7/32 # added 2026-12-01T18:37:15Z: credential stuffing\n"
        "\tremote_ip 2001:db8::/48 # added 2026-12-01T18:37:15Z\n"
        "}\n"
        "respond @edge_blocked 403\n"
    )
    entries = read_blocklist(blocklist)
    assert [(str(e.network), e.added, e.reason) for e in entries] == [
        ("203.0.113.7/32", "2026-12-01T18:37:15Z", "credential stuffing"),
        ("2001:db8::/48", "2026-12-01T18:37:15Z", ""),
    ]
    assert unblock(blocklist, "203.0.113.7/32").changed
    assert unblock(blocklist, "2001:db8::/48").changed
    assert blocklist.read_text() == HEADER  # no matcher without ranges: Caddy would refuse one


def test_block_and_unblock_are_idempotent(blocklist: Path) -> None:
    assert block(blocklist, "198.51.100.0/24", "scanner", NOW).changed
    before = blocklist.read_text()
    again = block(blocklist, "198.51.100.0/24", "other reason", NOW)
    inside = block(blocklist, "198.51.100.9", "", NOW)
    assert (again.changed, again.message) == (False, "198.51.100.0/24 is already blocked")
    assert (inside.changed, inside.message) == (
        False,
        "198.51.100.9/32 is already blocked, by 198.51.100.0/24",
    )
    assert blocklist.read_text() == before
    narrower = unblock(blocklist, "198.51.100.9")
    assert not narrower.changed
    assert "inside 198.51.100.0/24: unblock that instead" in narrower.message
    assert unblock(blocklist, "198.51.100.0/24").changed
    assert not unblock(blocklist, "198.51.100.0/24").changed
    assert blocklist.read_text() == HEADER


def test_a_reason_stays_one_comment_line(blocklist: Path) -> None:
    block(blocklist, "203.0.113.7", "line one\nrespond 200 }\x1b[31m {" + "x" * 500, NOW)
    lines = blocklist.read_text().splitlines()
    entry = next(line for line in lines if "remote_ip" in line)
    assert entry.startswith("\tremote_ip 203.0.113.7/32 # added 2026-12-01T18:37:15Z: line one respond 200 }")
    assert "\x1b" not in entry
    assert len(lines) == len(HEADER.splitlines()) + 4
    assert read_blocklist(blocklist)[0].reason.startswith("line one respond 200 }")


def test_a_missing_file_is_an_empty_list_and_is_created_readable_by_caddy(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.caddy"
    assert read_blocklist(path) == []
    assert block(path, "203.0.113.7", "", NOW).changed
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_file_is_replaced_whole_keeping_its_mode(blocklist: Path) -> None:
    blocklist.chmod(0o640)
    inode = blocklist.stat().st_ino
    block(blocklist, "203.0.113.7", "", NOW)
    assert stat.S_IMODE(blocklist.stat().st_mode) == 0o640
    assert blocklist.stat().st_ino != inode  # renamed into place, never rewritten in place
    assert sorted(p.name for p in blocklist.parent.iterdir()) == [".blocklist.caddy.lock", "blocklist.caddy"]


def test_concurrent_blocks_lose_no_entry(blocklist: Path) -> None:
    addresses = [f"203.0.113.{n}" for n in range(1, 25)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda address: block(blocklist, address, "", NOW), addresses))
    assert sorted(str(e.network) for e in read_blocklist(blocklist)) == sorted(f"{a}/32" for a in addresses)


def test_a_file_in_another_form_is_not_rewritten(blocklist: Path) -> None:
    blocklist.write_text(HEADER + "@edge_blocked {\n\tremote_ip 203.0.113.7\n\theader X-Evil 1\n}\n")
    before = blocklist.read_text()
    with pytest.raises(BlocklistError, match=r"line 5 is not a blocklist entry \('header X-Evil 1'\)"):
        block(blocklist, "198.51.100.1", "", NOW)
    assert blocklist.read_text() == before


def test_hand_written_entries_are_kept(blocklist: Path) -> None:
    blocklist.write_text(HEADER + "@edge_blocked {\n\tremote_ip 10.0.0.1/8 # abuse desk ticket 12\n}\n")
    block(blocklist, "203.0.113.7", "", NOW)
    entries = read_blocklist(blocklist)
    assert [(str(e.network), e.added, e.reason) for e in entries] == [
        ("10.0.0.0/8", "", "abuse desk ticket 12"),
        ("203.0.113.7/32", "2026-12-01T18:37:15Z", ""),
    ]


def test_a_directory_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BlocklistError, match="does not exist"):
        block(tmp_path / "nowhere" / "blocklist.caddy", "203.0.113.7", "", NOW)


@pytest.mark.parametrize(
    ("network", "internal"),
    [
        ("127.0.0.1/32", True),
        ("10.1.2.0/24", True),
        ("172.20.0.1/32", True),
        ("fd00::1/128", True),
        ("203.0.113.7/32", False),
        ("198.51.100.0/24", False),
        ("2001:db8::/48", False),
        ("8.0.0.0/7", False),
        ("8.0.0.0/6", True),  # reaches into 10.0.0.0/8
    ],
)
def test_internal_ranges_are_told_apart(network: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_network(network)) is internal


def test_reload_failures_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BlocklistError, match="is empty"):
        reload_edge("  ")
    with pytest.raises(BlocklistError, match="not-a-command-here is not installed"):
        reload_edge("not-a-command-here reload")
    with pytest.raises(BlocklistError, match=r"failed \(sh exit 3\): second"):
        reload_edge("sh -c 'echo first >&2; echo second >&2; exit 3'")
    reload_edge(f"touch {tmp_path / 'reloaded'}")
    assert (tmp_path / "reloaded").exists()


@pytest.mark.slow
def test_g39_cli_block_list_unblock(tmp_path: Path, blocklist: Path) -> None:
    """The commands as an operator runs them: one line each, exit 0 when nothing had to change, one-line
    failures, and --reload running SILVER_EDGE_RELOAD after the write."""
    marker = tmp_path / "reloaded"
    env = cli_env(
        tmp_path / "data", SILVER_EDGE_BLOCKLIST=str(blocklist), SILVER_EDGE_RELOAD=f"touch {marker}"
    )
    calls = [
        ("edge", "block", "203.0.113.7", "--reason", "credential stuffing", "--reload"),
        ("edge", "block", "203.0.113.7"),
        ("edge", "blocklist"),
        ("edge", "blocklist", "--json"),
        ("edge", "block", "10.0.0.1/8"),
        ("edge", "unblock", "203.0.113.7"),
        ("edge", "unblock", "203.0.113.7"),
        ("edge", "blocklist"),
    ]
    results = [run_many([(args, env, "")], tmp_path)[0] for args in calls]
    assert results[0].returncode == 0, results[0]
    assert results[0].stdout.splitlines() == [f"blocked 203.0.113.7/32 ({blocklist})", "edge reloaded"]
    assert marker.exists()
    assert results[1].returncode == 0
    assert results[1].stdout.strip() == f"203.0.113.7/32 is already blocked ({blocklist})"
    network, added, reason = results[2].stdout.strip().split(None, 2)
    assert (network, reason) == ("203.0.113.7/32", "credential stuffing")
    assert datetime.strptime(added, "%Y-%m-%dT%H:%M:%SZ")
    assert '"network": "203.0.113.7/32"' in results[3].stdout
    assert results[4].one_line_failure() == "error: 10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?"
    assert results[5].returncode == 0
    assert results[5].stdout.splitlines()[0] == f"unblocked 203.0.113.7/32 ({blocklist})"
    assert results[6].returncode == 0
    assert results[6].stdout.strip() == f"203.0.113.7/32 is not on the blocklist ({blocklist})"
    assert results[7].stdout.strip() == f"no source is blocked ({blocklist})"
    assert not (tmp_path / "data").exists()  # no data dir, no database, no secrets file


@pytest.mark.slow
def test_cli_reload_failure_says_the_list_was_written(tmp_path: Path, blocklist: Path) -> None:
    env = cli_env(tmp_path / "data", SILVER_EDGE_BLOCKLIST=str(blocklist), SILVER_EDGE_RELOAD="false")
    result = run_many([(("edge", "block", "203.0.113.7", "--reload"), env, "")], tmp_path)[0]
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("(the list is written; reload Caddy by hand)")
    assert len(read_blocklist(blocklist)) == 1
