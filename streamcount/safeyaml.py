"""YAML for files users hand us (zone and fleet files): no aliases, bounded size.

``yaml.safe_load`` refuses arbitrary objects but still expands aliases, so a few hundred bytes
of nested anchors (a "billion laughs" file) take gigabytes and minutes. Zone and fleet files
never need anchors: any alias is refused after a streaming pass that expands nothing.

Example:
    >>> load_yaml("zones: [{name: a}]", "z.yaml")
    {'zones': [{'name': 'a'}]}
    >>> load_yaml("a: &x [1]\\nb: *x", "z.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamcount.errors.InputError: z.yaml uses a YAML alias (*x): ...
"""

from __future__ import annotations

from typing import Any

from streamcount.errors import InputError

#: Largest zone or fleet file read (bytes): hand-written files are a few kilobytes.
MAX_BYTES = 4 * 1024 * 1024


def load_yaml(text: str, where: str) -> Any:
    """Parse ``text`` (YAML or JSON) with the safe loader after refusing aliases.

    Raises:
        InputError: too large, an alias, or not valid YAML (one line).
        yaml.YAMLError: never; reported as InputError.
    """
    import yaml

    if len(text) > MAX_BYTES:
        raise InputError(f"{where} is {len(text)} bytes: larger than {MAX_BYTES} bytes; a zone "
                         "or fleet file is a few kilobytes")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise InputError(f"{where} uses a YAML alias (*{event.anchor}): write the "
                                 "values out; aliases are refused (they can expand without "
                                 "bound)")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"{where} is not valid YAML{at}; fix its syntax") from None
