"""Measurements, their medians, fswatchd's ratio to each peer, and the JSON record.

Every measured value is one :class:`Sample`: (figure, case, metric, watcher, run). Values of
warm-up runs are kept in the JSON but left out of the medians. A watcher that could not run
gets a note instead of values ("not installed", "n/a (fswatchd run not available)").
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .watchers import FSWATCHD

__all__ = ["Metric", "Results", "Sample"]


@dataclass(frozen=True)
class Metric:
    """What a value means: name, unit, and whether lower or higher is better ("" = neither)."""

    name: str
    unit: str
    better: str = "lower"


@dataclass
class Sample:
    """One measured value (or a note saying why there is none)."""

    figure: int
    case: str
    metric: str
    unit: str
    better: str
    watcher: str
    run: int
    warmup: bool
    value: float | None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Results:
    """All samples of one suite run, in the order they were taken."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._order: list[tuple[int, str, str]] = []

    def add(
        self,
        figure: int,
        case: str,
        metric: Metric,
        watcher: str,
        run: int,
        warmup: bool,
        value: float | None,
        note: str | None = None,
        **extra: Any,
    ) -> None:
        """Record one value (``None`` plus ``note`` when the watcher could not deliver it)."""
        key = (figure, case, metric.name)
        if key not in self._order:
            self._order.append(key)
        self.samples.append(
            Sample(
                figure,
                case,
                metric.name,
                metric.unit,
                metric.better,
                watcher,
                run,
                warmup,
                value,
                note,
                extra,
            )
        )

    def medians(self) -> dict[tuple[int, str, str], dict[str, float | str]]:
        """(figure, case, metric) -> watcher -> median of measured runs, or the note."""
        values: dict[tuple[int, str, str], dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        notes: dict[tuple[int, str, str], dict[str, str]] = defaultdict(dict)
        for s in self.samples:
            key = (s.figure, s.case, s.metric)
            if s.value is not None and not s.warmup:
                values[key][s.watcher].append(s.value)
            elif s.value is None and s.note:
                notes[key][s.watcher] = s.note
        out: dict[tuple[int, str, str], dict[str, float | str]] = {}
        for key in self._order:
            row: dict[str, float | str] = dict(notes[key])
            for watcher, vals in values[key].items():
                row[watcher] = statistics.median(vals)
            out[key] = row
        return out

    def table(self) -> str:
        """The one table: per metric, each peer's median, fswatchd's, and fswatchd/peer."""
        units = {(s.figure, s.case, s.metric): (s.unit, s.better) for s in self.samples}
        lines = [
            f"{'fig':>3}  {'case':<22} {'metric':<18} {'peer':<16} {'peer':>12} "
            f"{'fswatchd':>12} {'fswatchd/peer':>14}"
        ]
        for key, row in self.medians().items():
            unit, better = units[key]
            mine = row.get(FSWATCHD, "n/a")
            peers = [w for w in row if w != FSWATCHD] or ["-"]
            for peer in peers:
                theirs = row.get(peer, "")
                lines.append(
                    f"{key[0]:>3}  {key[1]:<22} {key[2] + ' ' + unit:<18} {peer:<16} "
                    f"{_fmt(theirs):>12} {_fmt(mine):>12} {_ratio(mine, theirs, better):>14}"
                )
        lines.append("ratio = fswatchd / peer; for s, ms, KiB lower is better, for /s higher.")
        lines.extend(f"note: {n}" for n in sorted(self._notes()))
        return "\n".join(lines).rstrip()

    def _notes(self) -> set[str]:
        # One line each in the table (a failure's note may hold a traceback; the JSON has it).
        return {f"{s.watcher}: {s.note.strip().splitlines()[-1][:160]}"
                for s in self.samples if s.note}  # fmt: skip

    def write_json(self, path: Path, meta: dict[str, Any]) -> None:
        """Write every sample plus the medians and ``meta`` (args, limits, host) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        medians = [
            {"figure": k[0], "case": k[1], "metric": k[2], "medians": v}
            for k, v in self.medians().items()
        ]
        doc = {"meta": meta, "medians": medians, "samples": [asdict(s) for s in self.samples]}
        path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def _fmt(v: float | str) -> str:
    if isinstance(v, str):
        return v if len(v) <= 12 else "n/a"
    if v == 0 or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _ratio(mine: float | str, theirs: float | str, better: str) -> str:
    if isinstance(mine, str) or isinstance(theirs, str) or not theirs or not better:
        return ""
    return f"{mine / theirs:.2f}"
