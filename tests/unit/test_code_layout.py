"""The code's layout: every public function of app/ is used (by the product or its
tests), and a name is imported from the module that defines it, not from one that
imports it in turn."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("app", "engine", "speech", "bench")


def sources(folders: tuple[str, ...] = PRODUCT) -> dict[Path, str]:
    return {path: path.read_text() for folder in folders
            for path in sorted((REPO / folder).rglob("*.py"))}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def test_every_public_function_of_app_is_used() -> None:
    texts = sources((*PRODUCT, "tests"))
    unused = []
    for path, text in texts.items():
        if path.relative_to(REPO).parts[0] != "app":
            continue
        for node in ast.parse(text).body:
            if (isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
                    and not node.decorator_list):
                word = re.compile(rf"\b{node.name}\b")
                if sum(len(word.findall(t)) for t in texts.values()) <= 1:
                    unused.append(f"{module_name(path)}.{node.name}")
    assert unused == []


def test_names_are_imported_from_their_home_module() -> None:
    trees = {module_name(path): ast.parse(text) for path, text in sources().items()
             if path.name != "__init__.py"}
    imports = {module: {alias.asname or alias.name: node.module for node in tree.body
                        if isinstance(node, ast.ImportFrom) and node.module
                        for alias in node.names}
               for module, tree in trees.items()}
    relayed = [f"{module} imports {alias.name} from {node.module}, whose home is "
               f"{imports[node.module][alias.name]}"
               for module, tree in trees.items() for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module in imports
               for alias in node.names if alias.name in imports[node.module]]
    assert relayed == []
