"""What became of the records read: inserted, duplicates of a stored event, or rejected with a reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IngestCounts:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def __iadd__(self, other: IngestCounts) -> IngestCounts:
        self.read += other.read
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        return self

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "inserted": self.inserted, "duplicates": self.duplicates, "rejected": self.rejected}

    def summary(self) -> str:
        return ", ".join(f"{name} {value:,}" for name, value in self.as_dict().items())
