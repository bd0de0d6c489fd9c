"""Exceptions raised while loading reference data.

They are separate from the parsing code so that callers (the worker, the CLI) can catch them
without importing anything heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .csv_parse import BadRow


class ReferenceDataError(Exception):
    """Reference data could not be read or used (missing file, S3 error, bad location, ...)."""


class ReferenceDataRejected(ReferenceDataError):
    """The data was read but is not trustworthy enough to replace what we have.

    Raised when too many rows are malformed, or when a version has no usable rows. It carries the
    first bad rows so an operator can fix the file without re-running anything.
    """

    def __init__(
        self,
        message: str,
        *,
        bad_rows: Sequence[BadRow] = (),
        bad_count: int = 0,
        total_rows: int = 0,
    ) -> None:
        super().__init__(message)
        self.bad_rows: list[BadRow] = list(bad_rows)
        self.bad_count = bad_count
        self.total_rows = total_rows
