"""Each service's own state, behind a small store interface with all-or-nothing transactions.

A store holds collections of immutable records (frozen attrs objects) by key.
A service changes its store only inside `Store.transaction()`: the state
change, the id of the message being handled and the events that handling
publishes are committed together, or not at all (see `marketplace.service`).
`MemoryStore` keeps everything in dicts; a durable store per service will
implement the same interface later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

_DELETED = object()


class Transaction(Protocol):
    """Reads and writes of one unit of work; nothing is visible to others until commit."""

    def get(self, collection: str, key: str) -> Any | None:
        """The record `key` of `collection`, or None."""

    def put(self, collection: str, key: str, record: Any) -> None:
        """Write `record` as `key` of `collection`."""

    def delete(self, collection: str, key: str) -> None:
        """Remove `key` from `collection` (no error when absent)."""

    def values(self, collection: str) -> list[Any]:
        """Every record of `collection`, in key order."""


class Store(Protocol):
    """A service's state: collections of records, changed in transactions."""

    def transaction(self) -> Any:
        """A context manager yielding a `Transaction`; it commits on a normal exit."""


class MemoryStore:
    """A store in dictionaries; a transaction buffers its writes and applies them on commit."""

    def __init__(self) -> None:
        self._collections: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTransaction]:
        """Yield a transaction; commit its writes if the block ends normally, drop them otherwise."""
        tx = _MemoryTransaction(self._collections)
        yield tx
        with self._lock:
            for (collection, key), record in tx.writes.items():
                records = self._collections.setdefault(collection, {})
                if record is _DELETED:
                    records.pop(key, None)
                else:
                    records[key] = record

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy of every collection (for tests and diagnostics)."""
        with self._lock:
            return {name: dict(records) for name, records in self._collections.items()}


class _MemoryTransaction:
    """Reads through to the committed state, writes into a buffer."""

    def __init__(self, committed: dict[str, dict[str, Any]]) -> None:
        self._committed = committed
        self.writes: dict[tuple[str, str], Any] = {}

    def get(self, collection: str, key: str) -> Any | None:
        record = self.writes.get((collection, key))
        if record is None:
            return self._committed.get(collection, {}).get(key)
        return None if record is _DELETED else record

    def put(self, collection: str, key: str, record: Any) -> None:
        self.writes[(collection, key)] = record

    def delete(self, collection: str, key: str) -> None:
        self.writes[(collection, key)] = _DELETED

    def values(self, collection: str) -> list[Any]:
        records = dict(self._committed.get(collection, {}))
        for (name, key), record in self.writes.items():
            if name == collection:
                if record is _DELETED:
                    records.pop(key, None)
                else:
                    records[key] = record
        return [records[key] for key in sorted(records)]
