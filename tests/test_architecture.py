# Copyright (c) mmaffseg contributors. All rights reserved.
"""The one-way package layering of mmaffseg (README, "Package layout"), checked on the source.

Every ``import``/``from ... import`` of every module under ``mmaffseg/`` is read with :mod:`ast`,
including the lazy ones inside functions, relative imports and ``importlib.import_module`` calls
with a literal name. A sub-package may import itself and the packages of a strictly lower layer,
never one of its own layer or above. ``mmaffseg/__init__.py`` is the registration entry point
and imports everything.
"""
import ast
import pathlib
import re
import runpy
from typing import Dict, Iterator, List, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / 'mmaffseg'

#: Layer of every top-level module/package of mmaffseg; a package imports lower layers only.
LAYERS: Dict[str, int] = {
    'version': 0,
    'version_check': 1,
    'registry': 1,
    'utils': 1,
    # leaves: pure tensor functions and data structures
    'ops': 2,
    'structures': 2,
    # non-model algorithms called by models: the generic dense CRF and instance embedding's
    # seeds/targets/NMS (pure functions on tensors)
    'postprocessing': 3,
    'instance_embedding': 3,
    # registered nn.Modules, and the data side (which never needs a model)
    'datasets': 4,
    'models': 4,
    # hooks, metrics and visualisers may use models, never each other
    'engine': 5,
    'evaluation': 5,
    'visualization': 5,
    # multi-stage loops that drive models and metrics
    'wsss': 6,
    # inference from users' code (mmseg's apis: init_model...)
    'apis': 7,
    # the logic behind tools/ and demo/
    'cli': 8,
}


def _module_parts(path: pathlib.Path, root: pathlib.Path) -> List[str]:
    rel = path.relative_to(root.parent).with_suffix('')
    parts = list(rel.parts)
    return parts[:-1] if parts[-1] == '__init__' else parts


def imported_modules(path: pathlib.Path, root: pathlib.Path = ROOT) -> Iterator[Tuple[int, str]]:
    """``(line, absolute module name)`` of every import in a source file, lazy ones included."""
    parts = _module_parts(path, root)
    package = parts if path.name == '__init__.py' else parts[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            # `from mmaffseg import ops` imports mmaffseg.ops
            if module == root.name:
                for alias in node.names:
                    yield node.lineno, f'{module}.{alias.name}'
            else:
                yield node.lineno, module
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(
                node.func, 'id', None)) == 'import_module' and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.lineno, node.args[0].value


def layer_violations(root: pathlib.Path = ROOT,
                     layers: Dict[str, int] = LAYERS) -> List[str]:
    """One message per import that goes sideways or upwards in ``layers``."""
    errors = []
    for path in sorted(root.rglob('*.py')):
        parts = _module_parts(path, root)
        if len(parts) == 1:  # mmaffseg/__init__.py: imports every package to register them
            continue
        source = parts[1]
        if source not in layers:
            errors.append(f'{path}: package {source!r} has no layer; add it to LAYERS in '
                          f'{pathlib.Path(__file__).name} and to the README\'s "Package layout"')
            continue
        for line, module in imported_modules(path, root):
            names = module.split('.')
            if names[0] != root.name or len(names) < 2 or names[1] == source:
                continue
            target = names[1]
            rel = path.relative_to(root.parent)
            if target not in layers:
                errors.append(f'{rel}:{line}: imports {module}, whose package has no layer')
            elif layers[target] >= layers[source]:
                errors.append(
                    f'{rel}:{line}: {source} (layer {layers[source]}) imports {module} '
                    f'({target}, layer {layers[target]}); a package may import only packages of '
                    'a lower layer (README, "Package layout"): move the shared code down or '
                    'invert the dependency')
    return errors


def test_every_package_has_a_layer():
    packages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
                if (p.suffix == '.py' and p.stem != '__init__') or (p / '__init__.py').exists()}
    assert packages == set(LAYERS), f'packages without a layer: {packages - set(LAYERS)}, ' \
        f'layers without a package: {set(LAYERS) - packages}'


def test_imports_follow_the_layers():
    errors = layer_violations()
    assert not errors, '\n'.join(['forbidden imports:'] + errors)


def test_wheel_holds_no_benchmark_or_conversion_code():
    """The packages ``setup.py`` installs hold no benchmark or checkpoint-conversion module: that
    code lives beside the tools that run it (``tools/analysis_tools/benchmarks``,
    ``tools/model_converters/converters``), which the wheel does not install as packages."""
    setup = runpy.run_path(str(ROOT.parent / 'setup.py'), run_name='mmaffseg_setup')
    packages = setup['packages']()
    assert 'mmaffseg' in packages
    assert [p for p in packages if p.split('.')[0] != 'mmaffseg'] == [], packages
    modules = [f'{package}.{path.stem}' for package in packages
               for path in sorted((ROOT.parent / package.replace('.', '/')).glob('*.py'))]
    tool_code = [m for m in modules if re.search(
        r'benchmark|profiling|conver|dense_random_walk|random_batch', m.rsplit('.', 1)[1])]
    assert tool_code == [], (f'tool code in the installed package: {tool_code}; move it next to '
                             'the tool that runs it (tools/analysis_tools/benchmarks, '
                             'tools/model_converters/converters)')


#: The longest module of the package, in lines: longer ones are split by concept.
MAX_MODULE_LINES = 400


def test_no_package_module_over_the_length_limit():
    long = {str(path.relative_to(ROOT.parent)): n for path in sorted(ROOT.rglob('*.py'))
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f'modules over {MAX_MODULE_LINES} lines (split them by concept): {long}'


def _test_helper_names() -> set:
    tests = ROOT.parent / 'tests'
    return {path.stem for path in tests.rglob('*.py')} - {'__init__', 'conftest'}


def test_no_tool_depends_on_the_tests():
    """Scripts under ``tools/`` and ``demo/`` import nothing from ``tests/`` and put no test
    folder on ``sys.path`` (test machinery such as the hostile-input audit lives in tests/)."""
    helpers, errors = _test_helper_names(), []
    for folder in ('tools', 'demo'):
        for path in sorted((ROOT.parent / folder).rglob('*.py')):
            text = path.read_text()
            rel = path.relative_to(ROOT.parent)
            if re.search(r"['\"]tests['\"]", text):
                errors.append(f'{rel}: names the tests folder')
            for node in ast.walk(ast.parse(text)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
                errors += [f'{rel}:{node.lineno}: imports {n}' for n in names
                           if n.split('.')[0] in helpers | {'tests'}]
    assert errors == [], '\n'.join(errors)


def test_wheel_ships_every_data_file_the_package_reads():
    """Every file of the package that is not Python (the walk's C++ source) matches a
    ``package_data`` glob of ``setup.py``, so a wheel install has it."""
    import fnmatch
    setup = runpy.run_path(str(ROOT.parent / 'setup.py'), run_name='mmaffseg_setup')
    data = [path.relative_to(ROOT).as_posix() for path in sorted(ROOT.rglob('*'))
            if path.is_file() and path.suffix not in ('.py', '.pyc')
            and '.mim' not in path.parts and '__pycache__' not in path.parts]
    assert 'wsss/random_walk_kernel.cpp' in data
    missing = [rel for rel in data
               if not any(fnmatch.fnmatch(rel, glob) for glob in setup['PACKAGE_DATA'])]
    assert missing == [], f'package files a wheel would not install: {missing}'


@pytest.mark.parametrize('source, expect', [
    ('from mmaffseg.wsss import cam\n', 'imports mmaffseg.wsss'),
    ('def f():\n    from ...wsss.cam import x\n', 'imports mmaffseg.wsss.cam'),
    ('from ... import evaluation\n', 'imports mmaffseg.evaluation'),
    ('import mmaffseg.datasets.transforms\n', 'imports mmaffseg.datasets.transforms'),
    ('import importlib\nimportlib.import_module("mmaffseg.apis")\n', 'imports mmaffseg.apis'),
])
def test_checker_finds_lazy_relative_and_dynamic_imports(tmp_path, source, expect):
    root = tmp_path / 'mmaffseg'
    for package in ('models/heads', 'wsss', 'evaluation', 'datasets', 'apis', 'ops'):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / '__init__.py').write_text('')
    (root / 'models' / 'heads' / 'head.py').write_text('from ...ops import x\n' + source)
    errors = layer_violations(root, LAYERS)
    assert len(errors) == 1 and 'mmaffseg/models/heads/head.py:' in errors[0] \
        and expect in errors[0], errors


def test_package_exports_match_all():
    """Every name a package ``__init__`` imports from its modules is in its ``__all__``."""
    errors = []
    for path in sorted(ROOT.rglob('__init__.py')):
        if path == ROOT / '__init__.py':  # the set-up entry point, not an export list
            continue
        tree = ast.parse(path.read_text())
        imported, exported = set(), None
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                imported |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == '__all__':
                exported = set(ast.literal_eval(node.value))
        rel = path.relative_to(ROOT.parent)
        if exported is None:
            if imported:
                errors.append(f'{rel}: imports {sorted(imported)} but has no __all__')
            continue
        if imported - exported:
            errors.append(f'{rel}: imported but not in __all__: {sorted(imported - exported)}')
        if exported - imported:
            errors.append(f'{rel}: in __all__ but not imported: {sorted(exported - imported)}')
    assert not errors, '\n'.join(errors)
