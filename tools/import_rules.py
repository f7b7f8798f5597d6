"""An allow-list contract type for import-linter: modules may import only what is listed.

import-linter's own `forbidden` contracts name what may not be imported, so anything nobody
thought to forbid passes. Where the rule is an allow-list ("a domain imports the standard library
and the kernel, nothing else"), this contract says exactly that:

    [[tool.importlinter.contracts]]
    type = "allowlist"
    source_modules = ["bookwell.*.domain"]      # `*` is one name; a match covers its descendants
    allowed_modules = ["{context}.domain", "bookwell.platform.kernel", "email_validator"]
    exclude_modules = ["bookwell.platform"]      # optional: sources the pattern must not cover

`{context}` is the matched source's first two names (`bookwell.booking`). The standard library is
always allowed. An allowed name covers its descendants. Only direct imports are checked: what an
allowed module imports is that module's own contract's business.
"""

from __future__ import annotations

import sys
from typing import Any
from typing import cast

from grimp import ImportGraph
from importlinter import Contract
from importlinter import ContractCheck
from importlinter import fields
from importlinter import output


def _matches(module: str, pattern: str) -> bool:
    """Whether `module` is `pattern` (with `*` for any one name) or one of its descendants."""
    names, wanted = module.split("."), pattern.split(".")
    return len(names) >= len(wanted) and all(w in ("*", n) for w, n in zip(wanted, names, strict=False))


def _within(module: str, allowed: str) -> bool:
    return module == allowed or module.startswith(allowed + ".")


class AllowListContract(Contract):
    """Each source module imports only the standard library and the allowed modules."""

    type_name = "allowlist"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())
    exclude_modules = fields.ListField(subfield=fields.StringField(), required=False, default=[])

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        violations: list[dict[str, Any]] = []
        patterns = cast(list[str], self.source_modules)  # a field on the class, its parsed value on the contract
        names = cast(list[str], self.allowed_modules)
        excluded = cast(list[str], self.exclude_modules)
        sources = [
            m
            for m in sorted(graph.modules)
            if any(_matches(m, p) for p in patterns) and not any(_within(m, x) for x in excluded)
        ]
        for module in sources:
            context = ".".join(module.split(".")[:2])
            allowed = [name.replace("{context}", context) for name in names]
            for imported in sorted(graph.find_modules_directly_imported_by(module)):
                if imported.split(".")[0] in sys.stdlib_module_names or any(_within(imported, a) for a in allowed):
                    continue
                lines = [
                    detail["line_number"] for detail in graph.get_import_details(importer=module, imported=imported)
                ]
                violations.append({"importer": module, "imported": imported, "lines": lines})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            lines = ", ".join(f"l.{n}" for n in violation["lines"])
            output.print_error(f"{violation['importer']} is not allowed to import {violation['imported']} ({lines})")
            output.new_line()
