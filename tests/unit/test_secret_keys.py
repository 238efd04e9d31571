"""Where the data key comes from: MWALLET_SECRET_KEY, else a 0600 key file made on first need."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import re
import stat
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from mwallet import secret_keys
from mwallet.core.crypto import Keyring, key_id, new_data_key
from mwallet.core.errors import SecretKeyError

KEY_A = bytes(range(32))
KEY_B = bytes(range(50, 82))
CONTEXT = "totp:user-1"
NO_ENV: dict[str, str] = {}


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_key_file(path: Path, content: str | bytes, mode: int = 0o600) -> None:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)


def stored_keys(path: Path) -> list[bytes]:
    return [base64.b64decode(text) for text in json.loads(path.read_text())["keys"]]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "data.key"


# --- the key file --------------------------------------------------------------------------------
def test_load_creates_a_0600_key_file_when_missing(key_file: Path) -> None:
    ring = secret_keys.load(key_file, environ=NO_ENV)
    assert key_file.is_file()
    assert mode_of(key_file) == 0o600
    keys = stored_keys(key_file)
    assert len(keys) == 1
    assert len(keys[0]) == 32
    assert ring.current_key_id == key_id(keys[0])


def test_the_key_file_is_0600_whatever_the_umask(key_file: Path) -> None:
    previous = os.umask(0)
    try:
        secret_keys.load(key_file, environ=NO_ENV)
    finally:
        os.umask(previous)
    assert mode_of(key_file) == 0o600


def test_load_returns_the_same_keyring_the_next_time(key_file: Path) -> None:
    first = secret_keys.load(key_file, environ=NO_ENV)
    sealed = first.seal(b"secret", context=CONTEXT)
    second = secret_keys.load(key_file, environ=NO_ENV)
    assert second.current_key_id == first.current_key_id
    assert second.key_ids == first.key_ids
    assert second.open(sealed, context=CONTEXT) == b"secret"


def test_load_reads_an_existing_key_file(key_file: Path) -> None:
    key_file.parent.mkdir()
    write_key_file(key_file, json.dumps({"keys": [b64(KEY_A), b64(KEY_B)]}))
    ring = secret_keys.load(key_file, environ=NO_ENV)
    assert ring.key_ids == [key_id(KEY_A), key_id(KEY_B)]
    assert ring.current_key_id == key_id(KEY_A)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o700, 0o610])
def test_a_key_file_others_can_reach_is_refused(key_file: Path, mode: int) -> None:
    key_file.parent.mkdir()
    write_key_file(key_file, json.dumps({"keys": [b64(KEY_A)]}), mode=mode)
    if mode & 0o077:
        with pytest.raises(SecretKeyError, match="chmod 600"):
            secret_keys.load(key_file, environ=NO_ENV)
    else:  # 0700 is the owner's alone, so it is fine
        assert secret_keys.load(key_file, environ=NO_ENV).current_key_id == key_id(KEY_A)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-ascii"),
        pytest.param("{}", id="no-keys-field"),
        pytest.param('{"keys": []}', id="no-keys"),
        pytest.param(json.dumps({"keys": [b64(bytes(16))]}), id="16-byte-key"),
        pytest.param(json.dumps({"keys": [b64(KEY_A), b64(bytes(33))]}), id="33-byte-old-key"),
        pytest.param('{"keys": ["not base64!"]}', id="not-base64"),
        pytest.param(json.dumps({"keys": [b64(KEY_A).rstrip("=")]}), id="unpadded"),
        pytest.param('{"keys": [null]}', id="null-key"),
        pytest.param('{"keys": 5}', id="keys-number"),
        pytest.param(json.dumps({"keys": b64(KEY_A)}), id="keys-string"),
        pytest.param("[]", id="array"),
        pytest.param("null", id="null"),
        pytest.param('"text"', id="string"),
    ],
)
def test_a_damaged_key_file_is_refused(key_file: Path, content: str | bytes) -> None:
    key_file.parent.mkdir()
    write_key_file(key_file, content)
    with pytest.raises(SecretKeyError, match=re.escape(str(key_file))):
        secret_keys.load(key_file, environ=NO_ENV)


def test_a_key_file_that_is_a_directory_is_refused(key_file: Path) -> None:
    key_file.mkdir(parents=True)
    with pytest.raises(SecretKeyError):
        secret_keys.load(key_file, environ=NO_ENV)


# --- MWALLET_SECRET_KEY --------------------------------------------------------------------------
def test_the_environment_wins_over_the_key_file(key_file: Path) -> None:
    from_file = secret_keys.load(key_file, environ=NO_ENV)
    ring = secret_keys.load(key_file, environ={secret_keys.ENV: b64(KEY_A)})
    assert ring.key_ids == [key_id(KEY_A)]
    assert ring.current_key_id != from_file.current_key_id


def test_the_environment_is_used_without_creating_a_key_file(key_file: Path) -> None:
    ring = secret_keys.load(key_file, environ={secret_keys.ENV: b64(KEY_A)})
    assert ring.current_key_id == key_id(KEY_A)
    assert not key_file.exists()


@pytest.mark.parametrize(
    "value",
    [
        f"{b64(KEY_A)},{b64(KEY_B)}",
        f" {b64(KEY_A)} , {b64(KEY_B)} ",
        f"{b64(KEY_A)},,{b64(KEY_B)},",
    ],
    ids=["plain", "spaces", "empty-parts"],
)
def test_two_environment_keys_the_first_seals(key_file: Path, value: str) -> None:
    ring = secret_keys.load(key_file, environ={secret_keys.ENV: value})
    assert ring.key_ids == [key_id(KEY_A), key_id(KEY_B)]
    assert ring.current_key_id == key_id(KEY_A)
    old_sealed = Keyring([KEY_B]).seal(b"secret", context=CONTEXT)
    assert ring.open(old_sealed, context=CONTEXT) == b"secret"
    assert ring.seal(b"secret", context=CONTEXT).split(".")[1] == key_id(KEY_A)


def test_an_empty_environment_value_falls_back_to_the_file(key_file: Path) -> None:
    for value in ("", "   "):
        environ = {secret_keys.ENV: value}
        assert not secret_keys.uses_environment(environ)
        assert secret_keys.from_environment(environ) is None
        secret_keys.load(key_file, environ=environ)
        assert key_file.exists()
    assert secret_keys.uses_environment({secret_keys.ENV: b64(KEY_A)})


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64!", id="not-base64"),
        pytest.param(b64(bytes(16)), id="16-bytes"),
        pytest.param(b64(bytes(31)), id="31-bytes"),
        pytest.param(b64(bytes(64)), id="64-bytes"),
        pytest.param(KEY_A.hex(), id="hex"),
        pytest.param(b64(KEY_A).rstrip("="), id="unpadded"),
        pytest.param(base64.urlsafe_b64encode(b"\xfb" * 32).decode(), id="urlsafe"),
        pytest.param(f"{b64(KEY_A)},garbage", id="second-bad"),
        pytest.param(f"{b64(KEY_A)};{b64(KEY_B)}", id="semicolon"),
        pytest.param(",", id="only-comma"),
    ],
)
def test_malformed_environment_values_are_refused(key_file: Path, value: str) -> None:
    with pytest.raises(SecretKeyError):
        secret_keys.load(key_file, environ={secret_keys.ENV: value})
    assert not key_file.exists()  # a bad variable is not papered over with a new file


# --- rotation ------------------------------------------------------------------------------------
def test_add_new_key_puts_a_new_key_first_and_keeps_the_old(key_file: Path) -> None:
    old = secret_keys.load(key_file, environ=NO_ENV)
    sealed = old.seal(b"secret", context=CONTEXT)

    rotated = secret_keys.add_new_key(key_file)
    assert rotated.current_key_id != old.current_key_id
    assert rotated.key_ids == [rotated.current_key_id, old.current_key_id]
    assert mode_of(key_file) == 0o600

    reloaded = secret_keys.load(key_file, environ=NO_ENV)
    assert reloaded.key_ids == rotated.key_ids
    assert reloaded.open(sealed, context=CONTEXT) == b"secret"
    assert not reloaded.sealed_with_current_key(sealed)


def test_add_new_key_creates_the_file_if_missing(key_file: Path) -> None:
    ring = secret_keys.add_new_key(key_file)
    assert len(ring.key_ids) == 2
    assert len(stored_keys(key_file)) == 2


def test_keep_only_current_drops_the_old_keys(key_file: Path) -> None:
    old = secret_keys.load(key_file, environ=NO_ENV)
    old_sealed = old.seal(b"old", context=CONTEXT)
    secret_keys.add_new_key(key_file)
    rotated = secret_keys.add_new_key(key_file)
    assert len(rotated.key_ids) == 3
    new_sealed = rotated.seal(b"new", context=CONTEXT)

    secret_keys.keep_only_current(key_file)
    assert mode_of(key_file) == 0o600
    ring = secret_keys.load(key_file, environ=NO_ENV)
    assert ring.key_ids == [rotated.current_key_id]
    assert ring.open(new_sealed, context=CONTEXT) == b"new"
    with pytest.raises(SecretKeyError, match=old.current_key_id):
        ring.open(old_sealed, context=CONTEXT)


def test_rotation_leaves_no_temporary_files(key_file: Path) -> None:
    secret_keys.load(key_file, environ=NO_ENV)
    secret_keys.add_new_key(key_file)
    secret_keys.keep_only_current(key_file)
    assert sorted(path.name for path in key_file.parent.iterdir()) == ["data.key"]


def test_rotation_refuses_a_damaged_key_file(key_file: Path) -> None:
    key_file.parent.mkdir()
    write_key_file(key_file, "not json")
    with pytest.raises(SecretKeyError):
        secret_keys.add_new_key(key_file)
    with pytest.raises(SecretKeyError):
        secret_keys.keep_only_current(key_file)
    assert key_file.read_text() == "not json"


# --- several processes at once -------------------------------------------------------------------
PROCESSES = 4
ROUNDS = 100  # a naive create-if-missing disagrees in several rounds of 100


def _load_in_child(directory: str, barrier: Barrier, results: Queue[tuple[int, list[str]]]) -> None:
    """Each round, wait for every process, then all load the same missing key file at once."""
    for round_number in range(ROUNDS):
        barrier.wait()
        ring = secret_keys.load(Path(directory) / f"round-{round_number}" / "data.key", {})
        results.put((round_number, ring.key_ids))


def test_processes_loading_a_missing_key_file_at_once_share_one_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results: Queue[tuple[int, list[str]]] = context.Queue()
    processes = [
        context.Process(target=_load_in_child, args=(str(tmp_path), barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in range(PROCESSES * ROUNDS)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    for round_number in range(ROUNDS):
        key_file = tmp_path / f"round-{round_number}" / "data.key"
        stored = [key_id(key) for key in stored_keys(key_file)]
        assert len(stored) == 1
        seen = [key_ids for number, key_ids in outcomes if number == round_number]
        assert seen == [stored] * PROCESSES
        assert mode_of(key_file) == 0o600
        assert sorted(path.name for path in key_file.parent.iterdir()) == ["data.key"]


def test_new_data_key_is_what_the_file_stores(key_file: Path) -> None:
    key = new_data_key()
    key_file.parent.mkdir()
    write_key_file(key_file, json.dumps({"keys": [b64(key)]}))
    assert secret_keys.load(key_file, environ=NO_ENV).current_key_id == key_id(key)
