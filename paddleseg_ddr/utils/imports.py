"""Registration by file: a package imports all of its modules, so that a new model family,
dataset or loss registers itself in PaddleSeg's manager without an edit elsewhere."""
import importlib
import pkgutil


def import_submodules(package_name, package_path):
    """Import every module of the package ``package_name`` (its ``__path__``), in name order."""
    for module in sorted(pkgutil.iter_modules(package_path), key=lambda m: m.name):
        importlib.import_module(f'{package_name}.{module.name}')
