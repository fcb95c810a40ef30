"""The layering (bot -> commands -> services; sandbox apart) is part of the test suite."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    # In a process of its own: import-linter's logging.config would disable this process's loggers.
    check = "from importlinter.cli import lint_imports as l; import sys; sys.exit(l(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", check, str(ROOT / "pyproject.toml")], check=False)
    assert done.returncode == 0


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_only_adapters_import_httpx_and_only_storage_imports_sqlmodel() -> None:
    for path, names in _imports("services").items():
        if "httpx" in names:
            assert path.startswith("services/adapters/"), path
        if names & {"sqlmodel", "sqlalchemy"}:
            assert path.startswith("services/storage/"), path


def test_commands_do_no_io() -> None:
    for path, names in _imports("commands").items():
        assert not names & {"httpx", "sqlmodel", "sqlalchemy", "slack_bolt", "asyncio"}, path


def test_nothing_in_bot_services_or_sandbox_touches_gc_or_bolt_internals() -> None:
    """Python runs its own garbage collector (the sandbox's too); bolt is used through its public modules (its
    adapters, ``slack_bolt.async_app``), never ``slack_bolt.request``'s internals."""
    for package in ("bot", "services", "sandbox"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    assert name.split(".")[0] != "gc", f"{path} imports gc"
                    assert not name.startswith("slack_bolt.request"), f"{path} imports {name}"


def test_only_the_guarded_runner_writes_to_the_portal() -> None:
    """Every write to the portal goes through ResyncRunner, which passes services.guard
    first: no other production module may call the portal's write methods."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writes = re.compile(r"\.(resync_record|start_sync)\(")
    callers = sorted(
        str(path.relative_to(root))
        for package in ("bot", "commands", "services")
        for path in (root / package).rglob("*.py")
        if writes.search(path.read_text())
        and "adapters" not in path.parts  # the adapters implement the methods
    )
    assert callers == ["services/resync.py"]


def test_only_the_fix_service_writes_to_quickbooks() -> None:
    """Every write to QuickBooks (and the dismissal of a portal transfer that goes with it)
    goes through services.fixes, which re-reads the evidence first."""
    import re

    writes = re.compile(r"\.(apply_payment|apply_credit_memo|dismiss_payment)\(")
    callers = sorted(
        str(path.relative_to(ROOT))
        for package in ("bot", "commands", "services")
        for path in (ROOT / package).rglob("*.py")
        if writes.search(path.read_text()) and "adapters" not in path.parts
    )
    assert callers == ["services/fixes/apply.py"]
