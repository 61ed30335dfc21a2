"""A batch run's records: one :class:`CaseResult` per case, written as ``results.csv`` and
``results.json`` together after every case, and read back when a run resumes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["CaseResult", "read_results", "write_results"]


@dataclass
class CaseResult:
    """What happened to one case; ``metrics`` maps label name -> {dice, nsd}."""

    case_id: str
    status: str  # "done" or "error"
    output: str = ""
    message: str = ""
    seconds: float = 0.0
    worker: str = ""
    model_loads: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def read_results(out_dir: str | os.PathLike) -> dict[str, CaseResult]:
    """The records an earlier run left in ``out_dir/results.json``, by case id (none if
    unreadable)."""
    try:
        rows = json.loads((Path(out_dir) / "results.json").read_text())
        return {row["case_id"]: CaseResult(**row) for row in rows}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def write_results(results: list[CaseResult], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``results.csv`` (one row per case, Dice and NSD per label name) and ``results.json``,
    written together or not at all."""
    from napari_textseg.core.evaluation import write_csv
    from napari_textseg.core.io.atomic import atomic_group, atomic_target

    out = Path(out_dir)
    names = sorted({n for r in results for n in r.metrics})
    rows = []
    for r in results:
        row = {k: v for k, v in asdict(r).items() if k != "metrics"}
        for name in names:
            row[f"dice_{name}"] = r.metrics.get(name, {}).get("dice", "")
            row[f"nsd_{name}"] = r.metrics.get(name, {}).get("nsd", "")
        rows.append(row)
    with atomic_group():  # the table and the records always describe the same cases
        table = write_csv(out / "results.csv", rows)
        with atomic_target(out / "results.json") as tmp:
            tmp.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return table, out / "results.json"
