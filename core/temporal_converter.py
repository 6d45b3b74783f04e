"""The data converter of our Temporal clients and workers: the SDK's default, with dataclasses
decoded from cached field types.

The SDK decodes a dataclass by calling `typing.get_type_hints` on it every time; with
`from __future__ import annotations` that compiles each field's annotation string again, and it
was about three quarters of a payload's decode time (1.5 ms for a call's authorization, 0.8 ms
for its finalization, on every call). Here the types of a class are resolved once. The wire
format is the default's (encoding is untouched), so processes with and without it interoperate.
"""

from __future__ import annotations

import dataclasses
import typing
import weakref
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)

# (name, type, init) of each field. Weak keys: the workflow sandbox re-creates the classes of
# the modules it does not pass through, for each run.
_FieldTypes = tuple[tuple[str, Any, bool], ...]
_field_types: weakref.WeakKeyDictionary[type, _FieldTypes] = weakref.WeakKeyDictionary()


def _fields_of(cls: type) -> _FieldTypes:
    cached = _field_types.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = tuple(
            (field.name, hints[field.name], field.init) for field in dataclasses.fields(cls)
        )
        _field_types[cls] = cached
    return cached


class CachedDataclassConverter(JSONTypeConverter):
    """A dataclass from a JSON object, as the SDK's `value_to_type` builds it (fields absent
    from the object take their defaults, unknown keys are ignored, `init=False` fields are set
    afterwards), with the field types resolved once per class. Anything else is the SDK's."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        if not isinstance(value, dict):
            return JSONTypeConverter.Unhandled  # the SDK raises its own error
        converters = [self]
        init_values: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for name, field_type, init in _fields_of(hint):
            if name not in value:
                continue
            try:
                converted = value_to_type(field_type, value[name], converters)
            except Exception as err:
                raise TypeError(f"Failed converting field {name} on dataclass {hint}") from err
            (init_values if init else later)[name] = converted
        obj = hint(**init_values)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)
        return obj


class BillingPayloadConverter(CompositePayloadConverter):
    """The default payload converters, the JSON one with `CachedDataclassConverter`."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(custom_type_converters=[CachedDataclassConverter()])
                if isinstance(converter, JSONPlainPayloadConverter)
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


BILLING_DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=BillingPayloadConverter
)
