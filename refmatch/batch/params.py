"""What a batch run is asked to do, validated once, stored with the run, and read back on resume."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from refmatch.domain import clock
from refmatch.domain.errors import InvalidInput
from refmatch.domain.models import PURPOSES

OBJECTIVES = ("coverage", "score")  # of the assignment: see refmatch.batch.assignment

EXPORT_SUFFIXES = (".csv", ".jsonl")


@dataclass(frozen=True)
class BatchParams:
    """``purposes`` in PURPOSES order; ``as_of`` an ISO date (the matching's "today")."""

    purposes: tuple[str, ...] = PURPOSES
    k: int = 3
    as_of: str = ""
    greedy: bool = False
    objective: str = "coverage"  # coverage: every seeker a first match before any a second; score: total only
    depth: int = 10  # candidates per seeker the assignment may choose from
    per_advocate: int | None = None  # at most this many seekers per advocate in one run
    partition_size: int = 2000
    out: str | None = None  # export file; "{run_id}" is replaced by the run's id

    @classmethod
    def create(cls, purpose: str = "all", *, as_of: str | date | None = None, **values: Any) -> BatchParams:
        """Validated parameters; ``purpose`` is one purpose or ``all``; ``as_of`` defaults to today."""
        purposes: tuple[str, ...]
        if purpose == "all":
            purposes = PURPOSES
        elif purpose in PURPOSES:
            purposes = (purpose,)
        else:
            raise InvalidInput(f"purpose: must be one of {', '.join(PURPOSES)}, all; got {purpose!r}")
        if as_of is None or as_of == "":
            day = clock.today()
        elif isinstance(as_of, date):
            day = as_of
        else:
            try:
                day = date.fromisoformat(as_of)
            except ValueError:
                raise InvalidInput(f"as_of: must be a date YYYY-MM-DD, got {as_of!r}") from None
        params = cls(purposes=purposes, as_of=day.isoformat(), **{k: v for k, v in values.items() if v is not None})
        params.validate()
        return params

    def validate(self) -> None:
        if not self.purposes or any(p not in PURPOSES for p in self.purposes):
            raise InvalidInput(f"purposes: each must be one of {', '.join(PURPOSES)}, got {list(self.purposes)}")
        if self.objective not in OBJECTIVES:
            raise InvalidInput(f"objective: must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not 1 <= self.k <= 100:
            raise InvalidInput(f"k: must be between 1 and 100, got {self.k}")
        if self.depth < self.k:
            raise InvalidInput(f"depth: must be at least k ({self.k}), got {self.depth}")
        if self.per_advocate is not None and self.per_advocate < 1:
            raise InvalidInput(f"per_advocate: must be at least 1, got {self.per_advocate}")
        if self.partition_size < 1:
            raise InvalidInput(f"partition_size: must be at least 1, got {self.partition_size}")
        if self.out is not None and Path(self.out).suffix.lower() not in EXPORT_SUFFIXES:
            raise InvalidInput(f"out: must end in {' or '.join(EXPORT_SUFFIXES)}, got {self.out!r}")
        if self.out is not None:
            _check_out_folder(Path(self.out).parent)

    @property
    def day(self) -> date:
        return date.fromisoformat(self.as_of)

    @property
    def mode(self) -> str:
        return "greedy" if self.greedy else "coverage" if self.objective == "coverage" else "assignment"

    def out_path(self, run_id: int) -> Path | None:
        return Path(self.out.replace("{run_id}", str(run_id))) if self.out else None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["purposes"] = list(self.purposes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchParams:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["purposes"] = tuple(values.get("purposes", PURPOSES))
        return cls(**values)


def _check_out_folder(folder: Path) -> None:
    """Refuse an export folder that cannot be made or written before the run, not after it (the export
    makes missing folders, so the nearest one that exists must be a folder we may write in)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInput(f"out: cannot make the folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInput(f"out: cannot write in {existing} (permission denied)")
