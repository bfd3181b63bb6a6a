"""The budget ledger: dollars spent plus dollars reserved by calls in flight, never above the cap.

A caller asks to :meth:`BudgetLedger.admit` a unit of work (a judged sample, an edited image)
with its cost *estimate* before sending anything; the estimate is reserved until
:meth:`~BudgetLedger.release`. Actual costs (from the API's usage figures) are added with
:meth:`~BudgetLedger.charge`. A unit is admitted only while ``spent + reserved + estimate <=
budget``. When it does not fit and calls are in flight, admission waits for them (their
reservations may be larger than what they really cost); when nothing is in flight, it cannot
ever fit: the ledger is *exhausted* and refuses everything after, so a run stops at a
predictable place instead of squeezing small calls in later.
"""

from __future__ import annotations

import threading


class BudgetExhausted(Exception):
    """Raised by :meth:`BudgetLedger.require`: this unit would exceed the budget."""


class BudgetLedger:
    """Thread-safe ledger; ``budget_usd=None`` admits everything but still counts spending."""

    def __init__(self, budget_usd: float | None = None):
        if budget_usd is not None and not budget_usd >= 0:
            raise ValueError(f"budget must be >= 0 USD, got {budget_usd}")
        self.budget_usd = budget_usd
        self._cond = threading.Condition()
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.exhausted = False

    def admit(self, estimate_usd: float) -> bool:
        """Reserve ``estimate_usd`` if it fits (see the module docstring); False if it never will."""
        if self.budget_usd is None:
            return True
        with self._cond:
            while not self.exhausted:
                if self.spent_usd + self.reserved_usd + estimate_usd <= self.budget_usd:
                    self.reserved_usd += estimate_usd
                    return True
                if self.reserved_usd <= 1e-12:  # nothing in flight will free any
                    self.exhausted = True
                    break
                self._cond.wait()
        return False

    def require(self, estimate_usd: float) -> None:
        """:meth:`admit` or raise :class:`BudgetExhausted` with the figures."""
        if not self.admit(estimate_usd):
            raise BudgetExhausted(
                f"budget exhausted: {self.spent_usd:.4f} USD spent of {self.budget_usd:g}, the next call "
                f"is estimated at {estimate_usd:.4f} USD")

    def release(self, estimate_usd: float) -> None:
        """Free a reservation (always, in a ``finally``: admission may be waiting on it)."""
        if self.budget_usd is None:
            return
        with self._cond:
            self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
            self._cond.notify_all()

    def charge(self, usd: float) -> None:
        """Add an actual cost (billed whether or not the answer was usable)."""
        with self._cond:
            self.spent_usd += float(usd or 0.0)

    def over(self) -> bool:
        """Whether spending plus reservations already passed the budget (checked before a retry)."""
        if self.budget_usd is None:
            return False
        with self._cond:
            return self.spent_usd + self.reserved_usd > self.budget_usd

    def snapshot(self) -> dict:
        with self._cond:
            return {"budget_usd": self.budget_usd, "spent_usd": round(self.spent_usd, 6),
                    "reserved_usd": round(self.reserved_usd, 6), "exhausted": self.exhausted}
