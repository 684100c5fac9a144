"""Resolve the CloudFormation intrinsics the translated template uses (Ref, Fn::Sub, Fn::GetAtt,
Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::If and the condition functions) against the
local stack's names, or against any names a deploy test gives (a stack name, an image URI)."""

from __future__ import annotations

import re
from typing import Any

_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    def __init__(
        self,
        refs: dict[str, str],
        attributes: dict[tuple[str, str], str],
        conditions: dict[str, Any] | None = None,
        mappings: dict[str, Any] | None = None,
    ):
        self.refs = refs  # logical id or parameter or pseudo parameter -> value
        self.attributes = attributes  # (logical id, attribute) -> value
        self.conditions = conditions or {}
        self.mappings = mappings or {}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def _attribute(self, logical: str, name: str) -> str:
        if (logical, name) in self.attributes:
            return self.attributes[(logical, name)]
        raise KeyError(f"no local value for Fn::GetAtt {logical}.{name}")

    def resolve(self, value: Any) -> Any:
        """``value`` with its intrinsics resolved; AWS::NoValue (None) leaves a list or a mapping
        as CloudFormation does: the item or the property is not there."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.refs[arg]
            if key == "Fn::GetAtt":
                logical, name = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attribute(logical, name)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::FindInMap":
                name, top, second = (self.resolve(a) for a in arg)
                return self.mappings[name][top][second]
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

                def substitute(match: re.Match) -> str:
                    name = match.group(1)
                    if name in variables:
                        return str(variables[name])
                    if "." in name:
                        logical, attribute = name.split(".", 1)
                        return self._attribute(logical, attribute)
                    return str(self.refs[name])

                return _SUB.sub(substitute, text)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not None}
