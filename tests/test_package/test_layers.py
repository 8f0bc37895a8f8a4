"""The package's layers, as the README's Architecture block states them, checked against every import in the code.

The block lists ``mmmnv2/``'s modules and subpackages from the bottom layer up; a module may import from its own
layer and from the layers listed before it, never from one listed after it, lazily (inside a function) or not. And no
chain of imports between the package's modules comes back to where it started.
"""
import ast
import re
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

REPO = Path(__file__).resolve().parents[2]


def readme_layers(readme: str) -> List[str]:
    """The Architecture block's ``mmmnv2/`` entries ('version', 'registry', 'utils', ...) in their order."""
    block = re.compile(r'```\n(.*?)```', re.S).search(readme, readme.index('\n## Architecture\n')).group(1)
    return [name.rstrip('/').removesuffix('.py') for name in re.findall(r'^  ([a-z_]+(?:/|\.py))', block, re.M)]


def module_name(path: Path, root: Path = REPO) -> str:
    """'mmmnv2.deployment.export' for mmmnv2/deployment/export.py, 'mmmnv2.utils' for mmmnv2/utils/__init__.py
    (paths under ``root``)."""
    parts = path.relative_to(root).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def package_modules(root: Path = REPO) -> Dict[str, Path]:
    """Module name -> file of every module of the package under ``root``."""
    return {module_name(path, root): path for path in sorted((root / 'mmmnv2').rglob('*.py'))}


def imported_modules(path: Path, modules: Dict[str, Path], root: Path = REPO) -> Set[str]:
    """The package's modules that ``path`` (under ``root``) imports anywhere in its code (top level, functions,
    branches): for ``from X import Y``, module ``X.Y`` where Y is a module, else ``X``."""
    name = module_name(path, root)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # 'mmmnv2.utils.host.config_host' -> 'mmmnv2.utils.host'
                target = target.rpartition('.')[0]
            if target:
                found.add(target)
    return found - {name}


def layer_of(module: str) -> Optional[str]:
    """'deployment' for 'mmmnv2.deployment.export'; None for the package's own ``__init__`` (it imports them all)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def upward_imports(layers: List[str], imports: Dict[str, Set[str]]) -> List[str]:
    """'importer -> imported' for every import of a layer listed after the importer's (or of the package root)."""
    rank = {layer: index for index, layer in enumerate(layers)}
    found = []
    for importer, targets in sorted(imports.items()):
        own = layer_of(importer)
        if own is None:
            continue
        for target in sorted(targets):
            other = layer_of(target)
            if other is None or rank[other] > rank[own]:
                found.append(f'{importer} ({own}) -> {target} ({other or "the package root"})')
    return found


def import_cycle(imports: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One chain of imports that returns to its start, or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(module: str) -> Optional[List[str]]:
        state[module] = 1
        path.append(module)
        for target in sorted(imports.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(imports):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


@pytest.fixture(scope='module')
def imports() -> Dict[str, Set[str]]:
    modules = package_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def test_the_readme_lists_each_layer_once():
    layers = readme_layers((REPO / 'README.md').read_text(encoding='utf-8'))
    assert len(layers) == len(set(layers)) and {'utils', 'models', 'deployment', 'apis'} <= set(layers), layers


def test_no_module_imports_a_layer_listed_after_its_own(imports):
    layers = readme_layers((REPO / 'README.md').read_text(encoding='utf-8'))
    assert set(filter(None, map(layer_of, imports))) <= set(layers)
    assert not upward_imports(layers, imports)


def test_no_chain_of_imports_comes_back_to_its_start(imports):
    assert import_cycle(imports) is None


def test_an_upward_import_is_found_inside_a_function(tmp_path):
    """The checks above on a made-up package: a lazy import of a higher layer (the shape of the circle between
    ``apis`` and ``deployment`` that an earlier version had) and the circle it closes are both reported."""
    modules = dict.fromkeys(['mmmnv2.utils', 'mmmnv2.apis', 'mmmnv2.apis.inference', 'mmmnv2.deployment',
                             'mmmnv2.deployment.export'], tmp_path)
    source = tmp_path / 'mmmnv2' / 'deployment' / 'export.py'
    source.parent.mkdir(parents=True)
    source.write_text('from ..utils import x\n\n\ndef export():\n    from ..apis import init_model\n')
    found = imported_modules(source, modules, root=tmp_path)
    assert found == {'mmmnv2.utils', 'mmmnv2.apis'}
    imports = {'mmmnv2.deployment.export': found, 'mmmnv2.apis': {'mmmnv2.apis.inference'},
               'mmmnv2.apis.inference': {'mmmnv2.deployment'}, 'mmmnv2.deployment': {'mmmnv2.deployment.export'}}
    assert upward_imports(['utils', 'deployment', 'apis'], imports) == [
        'mmmnv2.deployment.export (deployment) -> mmmnv2.apis (apis)']
    assert import_cycle(imports) == ['mmmnv2.apis', 'mmmnv2.apis.inference', 'mmmnv2.deployment',
                                     'mmmnv2.deployment.export', 'mmmnv2.apis']

