"""The source tree's shape rules (DEVELOPERS' GUIDE): no module uses another module's private
(``_name``) names, no file in src/ over 500 lines, no function over 80 lines unless listed
below with its reason. Static (AST) checks: fast and deterministic. The import layering itself
is checked by import-linter (``make lint``; contracts in pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SCANNED = [SRC, ROOT / "bench"]

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

#: "path:qualified.name" -> why it may be longer than MAX_FUNCTION_LINES (keep it tiny).
LONG_FUNCTIONS: dict[str, str] = {}

#: path prefixes left out of the file- and function-length checks (none: keep it empty)
LENGTH_EXCLUDED: tuple[str, ...] = ()


def _py_files(roots: list[Path]) -> list[Path]:
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.py"))


def _module_name(path: Path) -> str:
    """Dotted module name of a file under src/ (``emovox.a.b``) or bench/ (``bench.x``)."""
    rel = path.relative_to(SRC if path.is_relative_to(SRC) else ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(path: Path) -> list[str]:
    """``file:line: what`` for every use of another emovox module's private name."""
    module = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> emovox module it is bound to
    foreign: set[str] = set()  # names bound to other packages' modules (os._exit is theirs)
    found: list[str] = []
    rel = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(node, module, path.name == "__init__.py")
            if not source.startswith("emovox"):
                foreign.update(a.asname or a.name for a in node.names)
                continue
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if _is_private(alias.name) and source != module:
                    found.append(f"{rel}:{node.lineno}: from {source} import {alias.name}")
                aliases[alias.asname or alias.name] = target
            if any(_is_private(part) for part in source.split(".")) and source != module:
                found.append(f"{rel}:{node.lineno}: imports private module {source}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if not alias.name.startswith("emovox"):
                    foreign.add(alias.asname or alias.name.split(".")[0])
                    continue
                if any(_is_private(part) for part in alias.name.split(".")):
                    found.append(f"{rel}:{node.lineno}: imports private module {alias.name}")
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:  # `import emovox.a.b` binds the name `emovox`
                    aliases[alias.name.split(".")[0]] = "emovox"
    own = _defined_names(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
            continue
        chain = _dotted(node.value) or "<expr>"
        head, _, rest = chain.partition(".")
        if head in aliases:  # a name of an emovox module (or something it holds)
            owner = ".".join(filter(None, [aliases[head], rest]))
            if owner != module:
                found.append(f"{rel}:{node.lineno}: {chain}.{node.attr}")
        elif head not in foreign | {"self", "cls"} and node.attr not in own:
            # an object's private attribute that no class of this module defines
            found.append(f"{rel}:{node.lineno}: {chain}.{node.attr}")
    return found


def _defined_names(tree: ast.AST) -> set[str]:
    """Names this module defines: functions, classes, assigned names and attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, ast.AST]]:
    out: list[tuple[str, ast.AST]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                out.append((name, node))
            out.extend(_functions(node, f"{name}."))
    return out


def _function_length(node: ast.AST) -> int:
    """Lines from the ``def`` (decorators excluded) to the last line of the body."""
    return node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]


def test_scanned_trees_exist() -> None:
    assert len(_py_files([SRC])) > 50


def test_no_module_uses_another_modules_private_names() -> None:
    found = [hit for path in _py_files(SCANNED) for hit in _private_uses(path)]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_no_source_file_over_500_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _py_files([SRC])
            if not p.relative_to(ROOT).as_posix().startswith(LENGTH_EXCLUDED)
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES]
    assert not long, "\n".join(long)


def test_no_function_over_80_lines_unless_listed() -> None:
    long: list[str] = []
    seen: set[str] = set()
    for path in _py_files([SRC]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(LENGTH_EXCLUDED):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, node in _functions(tree):
            key = f"{rel}:{name}"
            if _function_length(node) > MAX_FUNCTION_LINES:
                seen.add(key)
                if key not in LONG_FUNCTIONS:
                    long.append(f"{key}: {_function_length(node)} lines")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)
    stale = sorted(set(LONG_FUNCTIONS) - seen)
    assert not stale, f"LONG_FUNCTIONS entries no longer needed: {stale}"


def test_every_package_docstring_says_what_it_owns_and_may_import() -> None:
    missing = []
    for init in sorted((SRC / "emovox").rglob("__init__.py")):
        doc = (ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or "").lower()
        if "own" not in doc or not ("may import" in doc or "imports nothing" in doc):
            missing.append(str(init.relative_to(ROOT)))
    assert not missing, "package docstrings without owns / may import: " + ", ".join(missing)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from emovox.features.spectral import _prepare\n", 1),
        ("from emovox.features import spectral\nspectral._prepare(1)\n", 1),
        ("import emovox.experiment.dataset as ds\nds._extract(1)\n", 1),
        ("import emovox.experiment\nemovox.experiment._private\n", 1),
        ("from emovox.features.spectral import as_mono\nas_mono._cache\n", 1),
        ("from emovox.features import spectral\nspectral.as_mono(1)\n", 0),
        ("from emovox.demo import _own\n", 0),  # its own module's private name
        ("import numpy as np\nnp._private\n", 0),
        ("from . import _sibling\n", 1),
        ("def f(pred):\n    return pred._prepare_wave(1)\n", 1),  # another class's private
        ("class A:\n    _x = 1\n\ndef f(a):\n    return a._x\n", 0),  # defined here
        ("import os\nos._exit(1)\n", 0),
    ],
)
def test_private_name_scan_sees_what_it_must(tmp_path: Path, source: str, expected: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanner flags cross-module private uses and nothing else (it can fail)."""
    pkg = tmp_path / "src" / "emovox"
    pkg.mkdir(parents=True)
    f = pkg / "demo.py"
    f.write_text(source, encoding="utf-8")
    globals_ = globals()
    monkeypatch.setitem(globals_, "ROOT", tmp_path)
    monkeypatch.setitem(globals_, "SRC", tmp_path / "src")
    assert len(_private_uses(f)) == expected, _private_uses(f)
