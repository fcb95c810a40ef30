"""The Portal API contract (``docs/portal-api.yaml``) as validators of its schemas."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

CONTRACT_PATH = Path(__file__).with_name("portal-api.yaml")
"""``docs/portal-api.yaml``, through a link beside this module: installed as package data,
so `invoicebot portal-check` finds it outside a checkout too."""
"""The contract in this repository."""

DRAFT = "https://json-schema.org/draft/2020-12/schema"


class Contract:
    """The schemas of one contract document; ``problems`` validates a body against one."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.version = str(document.get("info", {}).get("version", "unknown"))
        self._components = document.get("components", {})
        self._validators: dict[str, jsonschema_rs.Validator] = {}

    @classmethod
    def load(cls, path: Path = CONTRACT_PATH) -> Contract:
        with path.open(encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
        if not isinstance(document, dict) or "components" not in document:
            raise ValueError(f"{path} is not an OpenAPI document")
        return cls(document)

    def schema_names(self) -> list[str]:
        return list(self._components.get("schemas", {}))

    def problems(self, schema: str, body: Any, *, limit: int = 3) -> list[str]:
        """Where ``body`` breaks schema ``schema`` (empty when it conforms), e.g.
        ``$.invoices[0].total: 50.0 is not of type "string"``; at most ``limit``."""
        found: list[str] = []
        for error in self._validator(schema).iter_errors(body):
            found.append(f"{_where(error.instance_path)}: {error.message}")
            if len(found) >= limit:
                break
        return found

    def examples(self, schema: str) -> list[Any]:
        examples = self._components["schemas"][schema].get("examples", [])
        return list(examples) if isinstance(examples, list) else []

    def _validator(self, schema: str) -> jsonschema_rs.Validator:
        validator = self._validators.get(schema)
        if validator is None:
            if schema not in self._components.get("schemas", {}):
                raise KeyError(f"the contract has no schema {schema}")
            root = {"$schema": DRAFT, "components": self._components}
            root["$ref"] = f"#/components/schemas/{schema}"
            validator = jsonschema_rs.validator_for(root, validate_formats=True)
            self._validators[schema] = validator
        return validator


@cache
def repository_contract() -> Contract:
    """The contract this checkout of the bot implements."""
    return Contract.load()


def _where(path: list[str | int]) -> str:
    where = "$"
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where
