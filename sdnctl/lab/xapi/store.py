"""The pool database: records by ref, and the event log `event.from` reads (created/modified generations)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.schema import BACKREFS, SCHEMA, Int32, coerce, fresh


def copy(value: Any) -> Any:
    """A copy safe to hand out: records, lists and maps are never shared with the store."""
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


@dataclasses.dataclass
class _Object:
    cls: str
    record: dict[str, Any]
    created: int
    modified: int


@dataclasses.dataclass(frozen=True)
class _Tombstone:
    cls: str
    ref: str
    created: int
    deleted: int


class Store:
    """Records by ref, each with xapi's created/modified generations; deletions leave a tombstone."""

    def __init__(self) -> None:
        self.generation = 0
        self._objects: dict[str, _Object] = {}
        self._tombstones: list[_Tombstone] = []

    def create(self, cls: str, **values: Any) -> str:
        ref = new_ref()
        record = {"uuid": str(uuid.uuid4())} | {n: fresh(f) for n, f in SCHEMA[cls].items()} | _numbers(cls, values)
        self.generation += 1
        self._objects[ref] = _Object(cls, record, self.generation, self.generation)
        for field, backref in BACKREFS.get(cls, {}).items():
            self._link(record[field], backref, ref, add=True)
        return ref

    def record(self, cls: str, ref: Any) -> dict[str, Any]:
        """The live record (never hand it out: `copy` it); HANDLE_INVALID if ref is not a `cls`."""
        obj = self._objects.get(ref) if isinstance(ref, str) else None
        if obj is None or obj.cls != cls:
            raise XapiFailure("HANDLE_INVALID", cls, ref)
        return obj.record

    def uuid_of(self, ref: str) -> str:
        obj = self._objects.get(ref)
        if obj is None:
            raise XapiFailure("HANDLE_INVALID", "object", ref)
        return obj.record["uuid"]

    def refs(self, cls: str) -> list[str]:
        return [ref for ref, obj in self._objects.items() if obj.cls == cls]

    def find(self, cls: str, **match: Any) -> list[str]:
        return [ref for ref in self.refs(cls) if all(self._objects[ref].record[f] == v for f, v in match.items())]

    def by_uuid(self, cls: str, object_uuid: Any) -> str:
        found = self.find(cls, uuid=object_uuid)
        if not found:
            raise XapiFailure("UUID_INVALID", cls, object_uuid)
        return found[0]

    def update(self, ref: str, **changes: Any) -> None:
        obj = self._objects[ref]
        for field, value in _numbers(obj.cls, changes).items():
            backref = BACKREFS.get(obj.cls, {}).get(field)
            if backref and obj.record[field] != value:
                self._link(obj.record[field], backref, ref, add=False)
                self._link(value, backref, ref, add=True)
            obj.record[field] = value
        self.touch(ref)

    def touch(self, ref: str) -> None:
        self.generation += 1
        self._objects[ref].modified = self.generation

    def delete(self, ref: str) -> None:
        obj = self._objects.pop(ref)
        for field, backref in BACKREFS.get(obj.cls, {}).items():
            self._link(obj.record[field], backref, ref, add=False)
        self.generation += 1
        self._tombstones.append(_Tombstone(obj.cls, ref, obj.created, self.generation))

    def _link(self, target: str, backref: str, ref: str, *, add: bool) -> None:
        obj = self._objects.get(target)
        if obj is None:
            return
        refs = [r for r in obj.record[backref] if r != ref] + ([ref] if add else [])
        obj.record[backref] = refs
        self.touch(target)

    def ref_counts(self) -> dict[str, Int32]:
        """event.from's valid_ref_counts: how many objects each class holds, every class (lower case)."""
        counts = {cls.lower(): Int32(0) for cls in SCHEMA}
        for obj in self._objects.values():
            counts[obj.cls.lower()] = Int32(counts[obj.cls.lower()] + 1)
        return counts

    def events_since(self, wanted: Callable[[str, str], bool], since: int) -> list[dict[str, Any]]:
        """xapi's event.from: one coalesced event per object changed after `since`, oldest first."""
        events = []
        for ref, obj in self._objects.items():
            if obj.modified > since and wanted(obj.cls, ref):
                operation = "add" if obj.created > since else "mod"
                events.append(_event(obj.modified, obj.cls, operation, ref) | {"snapshot": copy(obj.record)})
        for tomb in reversed(self._tombstones):
            if tomb.deleted <= since:
                break
            if tomb.created <= since and wanted(tomb.cls, tomb.ref):   # else born and gone in the window
                events.append(_event(tomb.deleted, tomb.cls, "del", tomb.ref))
        return sorted(events, key=lambda e: int(e["id"]))


def _numbers(cls: str, values: dict[str, Any]) -> dict[str, Any]:
    """Int and float fields as numbers, whichever form (number or decimal string) the caller gave."""
    fields = SCHEMA[cls]
    return {f: coerce(fields[f].kind, v, f) if f in fields and fields[f].kind in ("int", "float") else v
            for f, v in values.items()}


def _event(generation: int, cls: str, operation: str, ref: str) -> dict[str, Any]:
    # xapi's event.from sends timestamp "0.0"; the id is the object's generation.
    return {"id": str(generation), "timestamp": "0.0", "class": cls.lower(), "operation": operation, "ref": ref}
