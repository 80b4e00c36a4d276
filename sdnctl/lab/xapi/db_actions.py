"""The messages xapi generates from the datamodel (its Db_actions): get_all(_records), field accessors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.schema import CLASSES_BY_NAME_LABEL, SCHEMA, coerce
from sdnctl.lab.xapi.store import Store, copy

_FIELD_VERBS = ("get_", "set_", "add_to_", "remove_from_", "add_", "remove_")


def generated(store: Store, cls: str, message: str) -> Callable | None:
    """The handler of `cls.message` if the datamodel generates it, else None."""
    fields = SCHEMA[cls]

    def writable(field: str, *kinds: str) -> bool:
        return field in fields and fields[field].writable and fields[field].kind in kinds

    if message == "get_all":
        return lambda: store.refs(cls)
    if message == "get_all_records":
        return lambda: {ref: copy(store.record(cls, ref)) for ref in store.refs(cls)}
    if message == "get_record":
        return lambda self_: copy(store.record(cls, self_))
    if message == "get_by_uuid":
        return lambda uuid_: store.by_uuid(cls, uuid_)
    if message == "get_by_name_label" and cls in CLASSES_BY_NAME_LABEL:
        return lambda label: store.find(cls, name_label=label)
    verb, field = next(((v, message[len(v):]) for v in _FIELD_VERBS if message.startswith(v)), ("", ""))
    if verb == "get_" and (field in fields or field == "uuid"):
        return lambda self_: copy(store.record(cls, self_)[field])
    if verb == "set_" and writable(field, "str", "int", "float", "bool", "ref", "set", "map"):
        return lambda self_, value: _set_field(store, cls, self_, field, value)
    if verb == "add_to_" and writable(field, "map"):
        return lambda self_, key, value: _add_to_map(store, cls, self_, field, key, value)
    if verb == "remove_from_" and writable(field, "map"):
        return lambda self_, key: _remove_from_map(store, cls, self_, field, key)
    if verb in ("add_", "remove_") and writable(field, "set"):
        return lambda self_, value: _edit_set(store, cls, self_, field, value, add=verb == "add_")
    return None


def generated_names(cls: str) -> list[str]:
    """Every message `generated` answers for `cls`, as system.listMethods lists them."""
    fields = SCHEMA[cls]
    names = ["get_all", "get_all_records", "get_record", "get_by_uuid", "get_uuid"]
    names += ["get_by_name_label"] if cls in CLASSES_BY_NAME_LABEL else []
    for field, spec in fields.items():
        names.append(f"get_{field}")
        if spec.writable:
            names.append(f"set_{field}")
            names += [f"add_to_{field}", f"remove_from_{field}"] if spec.kind == "map" else []
            names += [f"add_{field}", f"remove_{field}"] if spec.kind == "set" else []
    return [f"{cls}.{name}" for name in names]


def _set_field(store: Store, cls: str, ref: str, field: str, value: Any) -> None:
    store.record(cls, ref)
    store.update(ref, **{field: coerce(SCHEMA[cls][field].kind, value, field)})


def _add_to_map(store: Store, cls: str, ref: str, field: str, key: Any, value: Any) -> None:
    record = store.record(cls, ref)
    entry = coerce("map", {key: value} if isinstance(key, str) else None, field)
    if key in record[field]:
        raise XapiFailure("MAP_DUPLICATE_KEY", cls, field, record["uuid"], key)
    store.update(ref, **{field: record[field] | entry})


def _remove_from_map(store: Store, cls: str, ref: str, field: str, key: Any) -> None:
    record = store.record(cls, ref)
    if key in record[field]:
        store.update(ref, **{field: {k: v for k, v in record[field].items() if k != key}})


def _edit_set(store: Store, cls: str, ref: str, field: str, value: Any, *, add: bool) -> None:
    record = store.record(cls, ref)
    value = coerce("str", value, field)
    if (value in record[field]) != add:
        kept = [v for v in record[field] if v != value]
        store.update(ref, **{field: kept + [value] if add else kept})
