"""The reports service: a person's movements (`GET /reports/transactions/{user_id}`, the seed's
endpoint), a statement of a period (streamed), usage statistics and trends, and the operators'
reports (`GET /admin/reports/…`).

The same use cases and the same documents as `mwallet history|statement|report|admin report`
(`mwallet.render`). `{user_id}` may be another person's only for admins and auditors: the core
decides (403 for anyone else, before it looks the person up; 404 for an admin asking for no one).
Query parameters are read strictly: an unknown or repeated one, a bad date, type, amount, cursor
or number is a 400 problem, and nothing is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from itertools import islice

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mwallet.core.domain.movements import MovementFilter, parse_types, period
from mwallet.core.domain.statistics import Period, UsageStats
from mwallet.core.domain.users import Principal
from mwallet.core.services.history import MovementPage, Statement
from mwallet.render import reports
from mwallet.render.movements import (
    POSTINGS_HEADER,
    movement_page_json,
    movements_csv_text,
    statement_csv_text,
    statement_json_text,
)
from mwallet.server.base import Handlers, choice, query_flag, query_number, strict_query
from mwallet.server.problems import Problem

CSV_TYPE = "text/csv; charset=utf-8"
# Lines of a streamed statement made per trip to a worker thread: a JSON piece is one line, a CSV
# piece (`statement_csv_text`) this many of them, so a trip takes one CSV piece.
STREAM_BATCH = 500

# The query parameters each kind of report reads (anything else is refused).
TRANSACTIONS = frozenset({"limit", "cursor", "from", "to", "type", "counterparty", "min", "max",
                          "format"})  # fmt: skip
STATEMENT = frozenset({"from", "to", "format", "count"})
USAGE = frozenset({"period", "months"})
WINDOW = frozenset({"days"})


class ReportHandlers(Handlers):
    # --- a person's reports ------------------------------------------------------------------
    async def transactions(self, request: Request) -> Response:
        caller = await self._caller(request)
        query = strict_query(request, TRANSACTIONS, repeatable=frozenset({"type"}))
        as_csv = _wants_csv(request, query)
        start, end = period(query.get("from"), query.get("to"), ("from", "to"))
        types = parse_types(request.query_params.getlist("type"))
        limit = query_number(request, "limit", 20)

        def read() -> MovementPage:  # amounts are read in the instance's currency: its settings
            where = MovementFilter(
                start, end, types, query.get("counterparty"),
                self._filter_amount(query.get("min")), self._filter_amount(query.get("max")),
            )  # fmt: skip
            return self.service.movements(
                caller, user_id=_user(request), where=where, cursor=query.get("cursor"),
                limit=limit,
            )  # fmt: skip

        page = await self._call(read)
        if not as_csv:
            return JSONResponse(movement_page_json(page))
        headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
        return Response(movements_csv_text(page.movements), media_type=CSV_TYPE, headers=headers)

    async def statement(self, request: Request) -> Response:
        """Opening balance, every movement of the period, totals, closing balance: written as the
        service reads the ledger in batches inside one snapshot, so any length streams in
        constant memory."""
        caller = await self._caller(request)
        query = strict_query(request, STATEMENT)
        as_csv = _wants_csv(request, query)
        start, end = period(query.get("from"), query.get("to"), ("from", "to"))
        count = query_flag(request, "count")

        def open_statement() -> tuple[AbstractContextManager[Statement], Statement]:
            reading = self.service.statement(
                caller, user_id=_user(request), start=start, end=end, count=count
            )
            return reading, reading.__enter__()  # refusals are problems, before any byte

        reading, found = await self._call(open_statement)
        headers = None if found.postings is None else {POSTINGS_HEADER: str(found.postings)}
        if as_csv:
            pieces = statement_csv_text(found, found.lines, per_piece=STREAM_BATCH)
            return StreamingResponse(
                _streamed(reading, pieces, 1), media_type=CSV_TYPE, headers=headers
            )
        pieces = statement_json_text(found, found.lines)
        return StreamingResponse(
            _streamed(reading, pieces, STREAM_BATCH), media_type="application/json",
            headers=headers,
        )  # fmt: skip

    async def usage_stats(self, request: Request) -> Response:
        return JSONResponse(reports.stats_json(await self._usage(request)))

    async def usage_trends(self, request: Request) -> Response:
        return JSONResponse(reports.trends_json(await self._usage(request)))

    async def _usage(self, request: Request) -> UsageStats:
        caller = await self._caller(request)
        query = strict_query(request, USAGE)
        chosen = choice(Period, "period", query.get("period"), Period.MONTH)
        months = query_number(request, "months", 6)
        return await self._call(
            lambda: self.service.usage_statistics(
                caller, period=chosen, months=months, user_id=_user(request)
            )
        )

    # --- the operators' reports -------------------------------------------------------------------
    async def volumes_report(self, request: Request) -> Response:
        caller, days = await self._window(request, 7)
        found = await self._call(lambda: self.service.volume_report(actor=caller, days=days))
        return JSONResponse(reports.volumes_json(found))

    async def active_report(self, request: Request) -> Response:
        caller, days = await self._window(request, 7)
        found = await self._call(lambda: self.service.active_users_report(actor=caller, days=days))
        return JSONResponse(reports.active_json(found))

    async def fees_report(self, request: Request) -> Response:
        caller, days = await self._window(request, 30)
        found = await self._call(lambda: self.service.fees_report(actor=caller, days=days))
        return JSONResponse(reports.fees_json(found))

    async def cash_report(self, request: Request) -> Response:
        caller, days = await self._window(request, 1)
        found = await self._call(lambda: self.service.cash_report(actor=caller, days=days))
        return JSONResponse(reports.cash_json(*found))

    async def holds_report(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset({"limit"}))
        limit = query_number(request, "limit", 100)
        found = await self._call(lambda: self.service.holds_report(actor=caller, limit=limit))
        return JSONResponse(reports.holds_json(found))

    async def trial_balance_report(self, request: Request) -> Response:
        """200 with `balanced` and `matches_postings` false when the books do not hold: the
        report is the finding (`mwallet admin report trial-balance` exits 7)."""
        caller = await self._caller(request)
        strict_query(request, frozenset())
        found = await self._call(lambda: self.service.trial_balance(actor=caller))
        return JSONResponse(reports.trial_json(found))

    async def _window(self, request: Request, default: int) -> tuple[Principal, int]:
        caller = await self._caller(request)
        strict_query(request, WINDOW)
        return caller, query_number(request, "days", default)

    def _filter_amount(self, text: str | None) -> int | None:
        """A bound on the movements' size, as a decimal string (zero allowed)."""
        return None if text is None else self.service.parse_money(text, allow_zero=True).minor


def _user(request: Request) -> str:
    return str(request.path_params["user_id"])


def _wants_csv(request: Request, query: dict[str, str]) -> bool:
    """`?format=csv|json`, else the Accept header: CSV only when it asks for text/csv."""
    named = query.get("format")
    if named is not None:
        if named not in ("json", "csv"):
            raise Problem(400, "invalid_input", "format is json or csv")
        return named == "csv"
    accepted = [part.split(";")[0].strip().lower()
                for part in request.headers.get("Accept", "").split(",")]  # fmt: skip
    return "text/csv" in accepted and "application/json" not in accepted


async def _streamed(
    reading: AbstractContextManager[Statement], pieces: Iterator[str], per_trip: int
) -> AsyncIterator[str]:
    """The pieces, a batch per trip to a worker thread (the reads block on the database); the
    statement's snapshot ends when the last piece is sent, or when the client goes away."""

    def take() -> list[str]:
        return list(islice(pieces, per_trip))

    error: BaseException | None = None
    try:
        while batch := await run_in_threadpool(take):
            yield "".join(batch)
    except BaseException as exc:  # a broken stream, or a client gone: the snapshot still ends
        error = exc
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(
                reading.__exit__,
                None if error is None else type(error),
                error,
                None if error is None else error.__traceback__,
            )
