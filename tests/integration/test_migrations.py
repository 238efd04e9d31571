"""Migrations: Alembic builds exactly the tables the code declares, once, even under a race."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Engine, MetaData, inspect, text
from sqlalchemy.exc import IntegrityError

from mwallet.core.db.engine import make_engine
from mwallet.core.db.migrate import HEAD, MIGRATIONS, current_revision, ensure_schema
from mwallet.core.db.tables import metadata
from mwallet.core.domain.ids import made_at, new_id
from mwallet.core.errors import ConfigurationError
from tests.conftest import empty_database
from tests.support import open_wallet

REPO = Path(__file__).resolve().parents[2]
schema = metadata()  # every table built
RACERS = 4


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new database with nothing in it; for SQLite even its folder does not exist yet."""
    with empty_database(backend, tmp_path / "not-yet") as url:
        yield url


@pytest.fixture
def engine_on() -> Iterator[list[Engine]]:
    """Engines made by a test, disposed after it."""
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def _engine(made: list[Engine], url: str) -> Engine:
    engine = make_engine(url)
    made.append(engine)
    return engine


def _schema_differences(engine: Engine, metadata: MetaData = schema) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def _check_constraints(engine: Engine) -> dict[str, set[str]]:
    """Names of the CHECK constraints per table: Alembic's comparison does not look at them."""
    inspector = inspect(engine)
    return {
        table: {str(check["name"]) for check in inspector.get_check_constraints(table)}
        for table in schema.tables
    }


def _declared_check_constraints() -> dict[str, set[str]]:
    return {
        name: {
            str(constraint.name)
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        for name, table in schema.tables.items()
    }


def _versions(engine: Engine) -> list[str]:
    with engine.connect() as conn, conn.begin():
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


# --- the revision chain --------------------------------------------------------------------------
def test_head_is_the_newest_migration() -> None:
    scripts = ScriptDirectory(str(MIGRATIONS))
    assert scripts.get_heads() == [HEAD], "update mwallet.core.db.migrate.HEAD"
    assert scripts.get_current_head() == HEAD
    # One straight line of revisions from the first to the head.
    chain = list(scripts.walk_revisions())
    assert chain[0].revision == HEAD
    assert chain[-1].down_revision is None


# --- the schema ----------------------------------------------------------------------------------
def test_a_migrated_database_matches_the_declared_tables(
    db_url: str, engine_on: list[Engine]
) -> None:
    engine = _engine(engine_on, db_url)
    assert _versions(engine) == [HEAD]
    assert _schema_differences(engine) == []
    assert _check_constraints(engine) == _declared_check_constraints()


def test_the_schema_comparison_sees_a_difference(db_url: str, engine_on: list[Engine]) -> None:
    # Guards the test above against passing because the comparison sees nothing at all.
    engine = _engine(engine_on, db_url)
    differences = _schema_differences(engine, MetaData())
    removed = {diff[1].name for diff in differences if diff[0] == "remove_table"}
    assert removed == set(schema.tables)


def test_a_brand_new_database_gets_the_whole_schema(
    empty_url: str, engine_on: list[Engine]
) -> None:
    engine = _engine(engine_on, empty_url)
    with engine.connect() as conn:
        assert current_revision(conn) is None
    ensure_schema(engine)
    assert _versions(engine) == [HEAD]
    assert _schema_differences(engine) == []
    assert _check_constraints(engine) == _declared_check_constraints()


def test_ensure_schema_is_idempotent(empty_url: str, engine_on: list[Engine]) -> None:
    engine = _engine(engine_on, empty_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO instance_settings (key, value) VALUES ('probe', 'kept')"))
    ensure_schema(engine)
    ensure_schema(_engine(engine_on, empty_url))  # and from another engine, as a new process would
    assert _versions(engine) == [HEAD]
    assert _schema_differences(engine) == []
    with engine.connect() as conn, conn.begin():
        kept = conn.execute(text("SELECT value FROM instance_settings WHERE key = 'probe'"))
        assert kept.scalar_one() == "kept"


def test_ensure_schema_keeps_the_data_of_a_used_database(
    db_url: str, engine_on: list[Engine]
) -> None:
    engine = _engine(engine_on, db_url)
    with engine.connect() as conn, conn.begin():
        before = conn.execute(text("SELECT key, value FROM instance_settings")).all()
    assert before  # the fixture's database is initialised
    ensure_schema(engine)
    with engine.connect() as conn, conn.begin():
        assert conn.execute(text("SELECT key, value FROM instance_settings")).all() == before
    assert _versions(engine) == [HEAD]


def test_a_database_from_a_newer_release_is_refused_as_a_wallet_error(
    db_url: str, engine_on: list[Engine]
) -> None:
    # Opened by an older mwallet, a database whose revision this release does not know must give
    # an error each door can report (an exit code, not "internal error"), and stay untouched.
    engine = _engine(engine_on, db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigurationError):
        ensure_schema(engine)
    assert _versions(engine) == ["9999"]


def test_opening_a_current_database_does_not_load_alembic(db_url: str) -> None:
    script = f"""
import json, sys
from mwallet.core.db.engine import make_engine
from mwallet.core.db.migrate import ensure_schema
engine = make_engine({db_url!r})
ensure_schema(engine)
engine.dispose()
print(json.dumps("alembic" in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is False


# --- a race on a brand-new database --------------------------------------------------------------
def _migrate_in_a_race(url: str, start: Barrier, results: Any) -> None:
    """In a child process: wait for every racer, then bring the schema up to date."""
    engine = make_engine(url)
    try:
        start.wait(timeout=60)
        ensure_schema(engine)
        with engine.connect() as conn:
            results.put(("ok", current_revision(conn)))
    except BaseException:
        results.put(("error", traceback.format_exc()))
        raise
    finally:
        engine.dispose()


def test_processes_racing_to_create_the_schema_do_it_once(
    empty_url: str, engine_on: list[Engine]
) -> None:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(RACERS)
    results = spawn.Queue()
    racers = [
        spawn.Process(target=_migrate_in_a_race, args=(empty_url, start, results))
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    try:
        outcomes = [results.get(timeout=300) for _ in racers]
    finally:
        for racer in racers:
            racer.join(timeout=60)
            if racer.is_alive():  # pragma: no cover - only when a racer hangs
                racer.kill()
                racer.join()
    failures = [detail for status, detail in outcomes if status != "ok"]
    assert failures == []
    assert outcomes == [("ok", HEAD)] * RACERS
    assert [racer.exitcode for racer in racers] == [0] * RACERS

    engine = _engine(engine_on, empty_url)
    assert _versions(engine) == [HEAD]
    assert _schema_differences(engine) == []


# --- build_wallet on SQLite ----------------------------------------------------------------------
def test_build_wallet_creates_the_folder_and_makes_sqlite_durable(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "wallet.db"
    wallet = open_wallet(f"sqlite:///{path}")
    try:
        assert path.is_file()
        # Two connections at once: every connection of the pool is set up, not only the first.
        first, second = wallet.engine.raw_connection(), wallet.engine.raw_connection()
        try:
            for raw in (first, second):
                cursor = raw.cursor()
                cursor.execute("PRAGMA journal_mode")
                assert cursor.fetchone() == ("wal",)
                cursor.execute("PRAGMA synchronous")
                assert cursor.fetchone() == (2,)  # FULL
                cursor.execute("PRAGMA foreign_keys")
                assert cursor.fetchone() == (1,)
                cursor.close()
        finally:
            first.close()
            second.close()
        assert _versions(wallet.engine) == [HEAD]
    finally:
        wallet.close()


def _upgrade_to(engine: Engine, revision: str) -> None:
    _migrate(engine, revision, down=False)


def _downgrade_to(engine: Engine, revision: str) -> None:
    _migrate(engine, revision, down=True)


def _migrate(engine: Engine, revision: str, *, down: bool) -> None:
    from alembic import command
    from alembic.config import Config

    from mwallet.core.db.engine import BEGIN_OPTION, is_sqlite

    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, revision)


def test_0012_gives_existing_entries_their_withdrawal_or_payment_and_postings_their_time(
    empty_url: str, engine_on: list[Engine]
) -> None:
    engine = _engine(engine_on, empty_url)
    _upgrade_to(engine, "0010")
    withdrawal, payment = "01JW" + "0" * 22, "01JP" + "1" * 22
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, code, kind, currency, balance, status, created_at) "
                "VALUES (1, 'a', 'wallet', 'USD', 0, 'active', 1), "
                "(2, 'b', 'hold', 'USD', 0, 'active', 1)"
            )
        )
        for entry, kind, memo, at in [
            ("E1", "hold", f"withdrawal {withdrawal}", 111),
            ("E2", "release", f"withdrawal {withdrawal} cancelled", 222),
            ("E3", "payment_hold", f"payment {payment}", 333),
            ("E4", "transfer", "lunch", 444),
        ]:
            conn.execute(
                text(
                    "INSERT INTO journal_entries (id, kind, created_at, memo) "
                    "VALUES (:e, :k, :t, :m)"
                ),
                {"e": entry, "k": kind, "t": at, "m": memo},
            )
            conn.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount, currency, balance_after) "
                    "VALUES (:e, 1, 5, 'USD', 5), (:e, 2, -5, 'USD', -5)"
                ),
                {"e": entry},
            )
    _upgrade_to(engine, "0016")  # 0017 gives these entries ids of their time (see its test)
    with engine.connect() as conn:
        refs: dict[str, str | None] = dict(
            conn.execute(text("SELECT id, ref_id FROM journal_entries")).all()
        )
        times = set(conn.execute(text("SELECT entry_id, created_at FROM postings")).all())
    assert refs == {"E1": withdrawal, "E2": withdrawal, "E3": payment, "E4": None}
    assert times == {("E1", 111), ("E2", 222), ("E3", 333), ("E4", 444)}
    _upgrade_to(engine, "head")
    assert _schema_differences(engine) == []


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_0017_gives_each_entry_an_id_of_its_time_and_slims_the_indexes(
    empty_url: str, engine_on: list[Engine]
) -> None:
    """A card top-up's entry used to take its payment's id, made when the top-up was asked for:
    it gets an id of its own time, in its postings and its top-up's row; other entries keep
    theirs; the entries' index on time goes, the outbox's index keeps only unpublished events."""
    engine = _engine(engine_on, empty_url)
    _upgrade_to(engine, "0016")
    asked, settled = datetime(2026, 2, 1, 9, 0, tzinfo=UTC), datetime(2026, 2, 1, 9, 5, tzinfo=UTC)
    payment_id, transfer_id = new_id(asked), new_id(settled)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, phone, display_name, password_hash, created_at) "
                "VALUES ('U1', '+258840000001', 'Ana', 'x', 1), "
                "('U2', '+258840000002', 'Bea', 'x', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO accounts (id, code, kind, currency, balance, status, created_at) "
                "VALUES (1, 'a', 'wallet', 'USD', 0, 'active', 1), "
                "(2, 'b', 'wallet', 'USD', 0, 'active', 1)"
            )
        )
        for entry, kind, memo in [
            (payment_id, "topup", f"top-up {payment_id}"),
            (transfer_id, "transfer", "lunch"),
        ]:
            conn.execute(
                text(
                    "INSERT INTO journal_entries (id, kind, created_at, memo) "
                    "VALUES (:e, :k, :t, :m)"
                ),
                {"e": entry, "k": kind, "t": _micros(settled), "m": memo},
            )
            conn.execute(
                text(
                    "INSERT INTO postings "
                    "(entry_id, account_id, amount, currency, balance_after, created_at) "
                    "VALUES (:e, 1, 5, 'USD', 5, :t), (:e, 2, -5, 'USD', -5, :t)"
                ),
                {"e": entry, "t": _micros(settled)},
            )
        conn.execute(
            text(
                "INSERT INTO topups (id, user_id, source, amount, currency, created_at) "
                "VALUES (:e, 'U1', 'visa', 5, 'USD', :t)"
            ),
            {"e": payment_id, "t": _micros(settled)},
        )
        conn.execute(
            text(
                "INSERT INTO transfers "
                "(id, sender_user_id, recipient_user_id, amount, currency, created_at) "
                "VALUES (:e, 'U2', 'U1', 5, 'USD', :t)"
            ),
            {"e": transfer_id, "t": _micros(settled)},
        )
    _upgrade_to(engine, "0017")  # 0019 drops the outbox's index altogether (see its test)
    with engine.connect() as conn:
        entries: dict[str, str] = dict(
            conn.execute(text("SELECT memo, id FROM journal_entries")).all()
        )
        postings = sorted(conn.execute(text("SELECT entry_id FROM postings")).scalars())
        topup = conn.execute(text("SELECT id FROM topups")).scalar_one()
        transfer = conn.execute(text("SELECT id FROM transfers")).scalar_one()
    topup_entry = entries.pop(f"top-up {payment_id}")
    assert entries == {"lunch": transfer_id}  # of its time: kept
    assert transfer == transfer_id
    assert topup_entry != payment_id
    assert made_at(topup_entry, settled)
    assert topup == topup_entry
    assert postings == sorted([topup_entry, topup_entry, transfer_id, transfer_id])
    indexes = {
        table: {index["name"] for index in inspect(engine).get_indexes(table)}
        for table in ("journal_entries", "outbox")
    }
    assert indexes == {"journal_entries": set(), "outbox": {"ix_outbox_unpublished"}}
    (unpublished,) = inspect(engine).get_indexes("outbox")
    options = unpublished.get("dialect_options", {})
    where = {str(clause) for name, clause in options.items() if name.endswith("_where")}
    assert {text.strip("()") for text in where} == {"published_at IS NULL"}  # only the backlog
    _upgrade_to(engine, "head")
    assert _schema_differences(engine) == []


def _outbox_columns(engine: Engine) -> list[str]:
    return [str(column["name"]) for column in inspect(engine).get_columns("outbox")]


def test_0019_keeps_only_the_events_still_to_relay_and_drops_their_index(
    empty_url: str, engine_on: list[Engine]
) -> None:
    """The outbox becomes a queue: published events are deleted, waiting ones kept; the partial
    index and `published_at` go. Going down brings both back, the kept events unpublished."""
    engine = _engine(engine_on, empty_url)
    _upgrade_to(engine, "0017")
    published = [new_id(datetime(2026, 3, 1, 9, minute, tzinfo=UTC)) for minute in (0, 1)]
    waiting = new_id(datetime(2026, 3, 1, 9, 2, tzinfo=UTC))
    with engine.begin() as conn:
        for event_id, at in [(published[0], 1), (published[1], 2), (waiting, None)]:
            conn.execute(
                text(
                    "INSERT INTO outbox "
                    "(event_id, event_type, aggregate_id, payload, created_at, published_at) "
                    "VALUES (:e, 'TransferCompleted', 'A1', '{}', 1, :p)"
                ),
                {"e": event_id, "p": at},
            )
    _upgrade_to(engine, "head")
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT event_id FROM outbox")).scalars().all()
    assert kept == [waiting]
    assert "published_at" not in _outbox_columns(engine)
    assert inspect(engine).get_indexes("outbox") == []
    assert _schema_differences(engine) == []
    if engine.dialect.name == "sqlite":  # dropped in place: still clustered on its key
        with engine.connect() as conn:
            made = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'outbox'"))
            assert "WITHOUT ROWID" in made.scalar_one()

    _downgrade_to(engine, "0017")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, published_at FROM outbox")).all()
    assert [tuple(row) for row in rows] == [(waiting, None)]
    assert [index["name"] for index in inspect(engine).get_indexes("outbox")] == [
        "ix_outbox_unpublished"
    ]
    _upgrade_to(engine, "head")
    assert _schema_differences(engine) == []


def test_0018_makes_each_accounts_posting_times_strictly_increasing_and_keys_them(
    empty_url: str, engine_on: list[Engine]
) -> None:
    """Postings written before 0018 may share a time or go back in time along an account: each
    moves to the earliest time after the account's posting before it (never earlier than its
    own); each account keeps its last posting's time; one unique index on (account, time) takes
    the place of two. Downgrading brings the two indexes back and drops the kept time."""
    engine = _engine(engine_on, empty_url)
    _upgrade_to(engine, "0017")
    times = [100, 100, 90, 200, 150, 151]  # entry by entry, in the order they were posted
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, code, kind, currency, balance, status, created_at) "
                "VALUES (1, 'a', 'wallet', 'USD', 0, 'active', 1), "
                "(2, 'b', 'funding', 'USD', 0, 'active', 1), "
                "(3, 'c', 'wallet', 'USD', 0, 'active', 1)"
            )
        )
        for number, at in enumerate(times, start=1):
            entry = f"E{number:025d}"
            conn.execute(
                text("INSERT INTO journal_entries (id, kind, created_at) VALUES (:e, 'topup', :t)"),
                {"e": entry, "t": at},
            )
            conn.execute(
                text(
                    "INSERT INTO postings "
                    "(entry_id, account_id, amount, currency, balance_after, created_at) "
                    "VALUES (:e, 2, -5, 'USD', :f, :t), (:e, 1, 5, 'USD', :w, :t)"
                ),
                {"e": entry, "t": at, "f": -5 * number, "w": 5 * number},
            )
    _upgrade_to(engine, "0019")  # 0020 keys postings by entry (see its test)
    with engine.connect() as conn:
        moved: dict[int, list[int]] = {}
        for account, at in conn.execute(
            text("SELECT account_id, created_at FROM postings ORDER BY account_id, id")
        ):
            moved.setdefault(account, []).append(at)
        kept: dict[int, int] = dict(conn.execute(text("SELECT id, posted_at FROM accounts")).all())
    assert moved == {1: [100, 101, 102, 200, 201, 202], 2: [100, 101, 102, 200, 201, 202]}
    assert kept == {1: 202, 2: 202, 3: 0}
    indexes = {index["name"]: index["unique"] for index in inspect(engine).get_indexes("postings")}
    assert indexes == {
        "ix_postings_account_id_created_at": True,
        "ix_postings_entry_id": False,
    }

    from alembic import command
    from alembic.config import Config

    with engine.connect() as conn, conn.begin():
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.downgrade(config, "0017")
    assert "posted_at" not in {column["name"] for column in inspect(engine).get_columns("accounts")}
    assert {index["name"] for index in inspect(engine).get_indexes("postings")} == {
        "ix_postings_account_id_id",
        "ix_postings_account_id_created_at_id",
        "ix_postings_entry_id",
    }


def test_0020_keys_each_posting_by_its_entry_and_number_in_it(
    empty_url: str, engine_on: list[Engine]
) -> None:
    """The postings lose their ids and the index on their entry: (entry_id, leg) is their key,
    an entry's postings numbered from 0 in the order of their accounts (a table of its own on
    SQLite, WITHOUT ROWID). Going down gives them ids again, in the order of entries and legs."""
    engine = _engine(engine_on, empty_url)
    _upgrade_to(engine, "0019")
    first, second = "E" + "1" * 25, "E" + "2" * 25
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, code, kind, currency, balance, status, created_at, "
                "posted_at) VALUES (1, 'a', 'wallet', 'USD', 0, 'active', 1, 0), "
                "(2, 'b', 'funding', 'USD', 0, 'active', 1, 0), "
                "(3, 'c', 'fees', 'USD', 0, 'active', 1, 0)"
            )
        )
        for entry in (first, second):
            conn.execute(
                text("INSERT INTO journal_entries (id, kind, created_at) VALUES (:e, 'topup', 1)"),
                {"e": entry},
            )
        # Inserted out of their accounts' order: the legs follow the accounts, not the ids.
        conn.execute(
            text(
                "INSERT INTO postings "
                "(entry_id, account_id, amount, currency, balance_after, created_at) VALUES "
                "(:f, 3, 1, 'USD', 1, 10), (:f, 2, -11, 'USD', -11, 10), "
                "(:f, 1, 10, 'USD', 10, 10), (:s, 2, -5, 'USD', -16, 20), "
                "(:s, 1, 5, 'USD', 15, 20)"
            ),
            {"f": first, "s": second},
        )
    _upgrade_to(engine, "head")
    assert _schema_differences(engine) == []
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("postings")["constrained_columns"] == ["entry_id", "leg"]
    assert "id" not in {column["name"] for column in inspector.get_columns("postings")}
    assert {index["name"] for index in inspector.get_indexes("postings")} == {
        "ix_postings_account_id_created_at"
    }
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT entry_id, leg, account_id, amount, balance_after, created_at "
                "FROM postings ORDER BY entry_id, leg"
            )
        ).all()
        if engine.dialect.name == "sqlite":
            made = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'postings'"))
            assert "WITHOUT ROWID" in made.scalar_one()
    assert [tuple(row) for row in rows] == [
        (first, 0, 1, 10, 10, 10),
        (first, 1, 2, -11, -11, 10),
        (first, 2, 3, 1, 1, 10),
        (second, 0, 1, 5, 15, 20),
        (second, 1, 2, -5, -16, 20),
    ]
    # The key refuses a second posting numbered the same.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO postings (entry_id, leg, account_id, amount, currency, "
                "balance_after, created_at) VALUES (:f, 0, 3, 1, 'USD', 2, 30)"
            ),
            {"f": first},
        )

    _downgrade_to(engine, "0019")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT id, entry_id, account_id FROM postings ORDER BY id")).all()
    assert [tuple(row) for row in back] == [
        (1, first, 1),
        (2, first, 2),
        (3, first, 3),
        (4, second, 1),
        (5, second, 2),
    ]
    assert {index["name"] for index in inspect(engine).get_indexes("postings")} == {
        "ix_postings_account_id_created_at",
        "ix_postings_entry_id",
    }
    with engine.begin() as conn:  # ids are given again by the table itself
        conn.execute(
            text(
                "INSERT INTO postings (entry_id, account_id, amount, currency, balance_after, "
                "created_at) VALUES (:s, 3, 1, 'USD', 2, 30)"
            ),
            {"s": second},
        )
        assert conn.execute(text("SELECT max(id) FROM postings")).scalar_one() == 6
    _upgrade_to(engine, "head")
    assert _schema_differences(engine) == []
