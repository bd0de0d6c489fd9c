"""Reference data (user_id -> gender, segment_id) for the LEFT JOIN: compact, self-reloading, atomic.

Pure Python on purpose (no Kafka, Faust or Elasticsearch imports) so it can be tested and benchmarked
on its own and reused by the CLI.
"""

from .csv_parse import BadRow, ParseResult, parse_csv
from .errors import ReferenceDataError, ReferenceDataRejected
from .sources import EmptySource, LocalFileSource, S3Source, Snapshot, Source, open_source
from .store import ReferenceStore
from .table import MAX_USER_ID, UserTable, UserTableBuilder

__all__ = [
    "MAX_USER_ID",
    "BadRow",
    "EmptySource",
    "LocalFileSource",
    "ParseResult",
    "ReferenceDataError",
    "ReferenceDataRejected",
    "ReferenceStore",
    "S3Source",
    "Snapshot",
    "Source",
    "UserTable",
    "UserTableBuilder",
    "open_source",
    "parse_csv",
]
