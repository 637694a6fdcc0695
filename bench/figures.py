"""A figure is a measured value beside its limit (when the issues set one), from the same run."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str
    limit: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Value over limit, oriented so that >= 1 always means the limit is met."""
        if self.limit is None or self.limit == 0 or self.value == 0:
            return None
        return self.value / self.limit if self.higher_is_better else self.limit / self.value

    @property
    def met(self) -> bool | None:
        if not math.isfinite(self.value):
            return None if self.limit is None else False
        ratio = self.ratio
        return None if ratio is None else ratio >= 1.0

    def as_json(self) -> dict[str, object]:
        """JSON-safe: a value that is not finite (nothing measured, e.g. no alert arrived) is
        null, and then ``met`` is false when there is a limit."""
        finite = math.isfinite(self.value)
        return {
            "value": round(self.value, 4) if finite else None,
            "unit": self.unit,
            "limit": self.limit,
            "better": "higher" if self.higher_is_better else "lower",
            "ratio": None if self.ratio is None or not finite else round(self.ratio, 3),
            "met": self.met if finite or self.limit is None else False,
            "note": self.note,
        }


def machine() -> dict[str, object]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "unit", "limit", "ratio", "")]
    for f in figures:
        rows.append(
            (
                f.name,
                f"{f.value:,.3f}" if f.value < 100 else f"{f.value:,.0f}",
                f.unit,
                "" if f.limit is None else f"{'>=' if f.higher_is_better else '<='} {f.limit:,g}",
                "" if f.ratio is None else f"{f.ratio:.2f}",
                {True: "ok", False: "MISSED", None: ""}[f.met],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
