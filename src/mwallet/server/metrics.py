"""`GET /metrics` in the Prometheus text format (0.0.4), written by hand: requests by route, method
and status; their latency as a histogram by route and method; and the money-moving answers by
operation and status. In memory, per process: Prometheus scrapes each process and sums.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The routes that move money, by the operation they are counted as.
MONEY_ROUTES = {
    ("POST", "/wallet/{user_id}/transfer"): "transfer",
    ("POST", "/wallet/{user_id}/topup"): "topup",
    ("POST", "/payments/bill"): "bill_payment",
    ("POST", "/payments/topup"): "airtime",
    ("POST", "/payments/callback/{provider}"): "payment_settlement",
    ("POST", "/atm/withdrawal-request"): "withdrawal_request",
    ("POST", "/atm/withdrawals/{withdrawal_id}/dispense"): "withdrawal_dispense",
    ("POST", "/atm/withdrawals/{withdrawal_id}/confirm"): "withdrawal_payout",
    ("POST", "/atm/withdrawals/{withdrawal_id}/reverse"): "withdrawal_reversal",
    ("POST", "/atm/withdrawals/{withdrawal_id}/cancel"): "withdrawal_cancel",
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._money: dict[tuple[str, int], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, method, status)] += 1
            counts = self._buckets.setdefault((route, method), [0] * (len(BUCKETS) + 1))
            counts[bisect_left(BUCKETS, seconds)] += 1
            self._sums[(route, method)] += seconds
            operation = MONEY_ROUTES.get((method, route))
            if operation is not None:
                self._money[(operation, status)] += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP mwallet_http_requests_total HTTP requests answered, by route and status.",
                "# TYPE mwallet_http_requests_total counter",
            ]
            for (route, method, status), count in sorted(self._requests.items()):
                labels = _labels(route=route, method=method, status=str(status))
                lines.append(f"mwallet_http_requests_total{labels} {count}")
            lines += [
                "# HELP mwallet_http_request_duration_seconds Time to answer, by route.",
                "# TYPE mwallet_http_request_duration_seconds histogram",
            ]
            for (route, method), counts in sorted(self._buckets.items()):
                name = "mwallet_http_request_duration_seconds"
                running = 0
                for bound, count in zip((*BUCKETS, None), counts, strict=True):
                    running += count
                    le = "+Inf" if bound is None else repr(bound)
                    labels = _labels(route=route, method=method, le=le)
                    lines.append(f"{name}_bucket{labels} {running}")
                labels = _labels(route=route, method=method)
                lines.append(f"{name}_sum{labels} {self._sums[(route, method)]:.6f}")
                lines.append(f"{name}_count{labels} {running}")
            lines += [
                "# HELP mwallet_money_requests_total Money-moving requests answered, by "
                "operation and status (2xx: moved, or a replay of a move).",
                "# TYPE mwallet_money_requests_total counter",
            ]
            for (operation, status), count in sorted(self._money.items()):
                labels = _labels(operation=operation, status=str(status))
                lines.append(f"mwallet_money_requests_total{labels} {count}")
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    shown = ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())
    return "{" + shown + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
