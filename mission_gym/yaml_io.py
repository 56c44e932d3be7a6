"""Reading YAML files users write, and saying what is wrong with them in their terms.

:class:`YamlLoader` reads config and policy files (configs/*.yaml, the retention policy);
:func:`describe_validation_error` turns a pydantic error into `key.path = value: what is wrong`.
"""

import re
from typing import Any

import yaml
from pydantic import ValidationError


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers like `1e-3` as YAML 1.2 does: floats, not strings (so they validate
    and hash like `0.001`), and refusing a mapping that repeats a key (where PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; its keys may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_line:
                    where = (f"twice on line {line}" if first_line[key] == line
                             else f"on line {line} (first on line {first_line[key]})")
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} {where}; a mapping names each key once: remove or "
                        "rename one", None)
                first_line[key] = line
            except TypeError:
                pass  # an unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep)


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def describe_validation_error(error: ValidationError) -> str:
    """The first problem of a pydantic error as users read it: `key.path = value: what is wrong`, without
    pydantic's type codes and documentation links."""
    first = error.errors()[0]
    key = _key_path(first["loc"])
    shown = "" if first["type"] == "missing" else f" = {_short_repr(first.get('input'))}"
    hint = "unknown key; remove it or fix its spelling" if first["type"] == "extra_forbidden" else first["msg"]
    hint = hint.removeprefix("Value error, ")  # pydantic's prefix for our own validators' messages
    more = f" (and {error.error_count() - 1} more problem(s))" if error.error_count() > 1 else ""
    return f"{key or '<top level>'}{shown}: {hint}{more}"


def _short_repr(value: Any, limit: int = 160) -> str:
    """repr of a bad value, cut short: a whole mapping (e.g. every reward component) would bury the message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic's marker for "the key itself" of a mapping entry; the path already names it
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
