# stephost Python shim: every module on the build's path, importable at run
# time. componentize-py snapshots the interpreter after the build-time
# imports and the component has no file system at run time, so a module
# first imported inside `handler` (`heapq` by `Counter.most_common`, `csv`,
# `zoneinfo`, a package's lazily imported submodule) would not be found.
# At build time this module reads every `.py` file (and every package's data
# files) below the path into memory; the snapshot keeps them, and
# a finder first in `sys.meta_path` serves them at run time. The finder also
# serves the packages' `*.dist-info` metadata to `importlib.metadata`
# (`version("six")`, `entry_points()`): SDKs read their own version as
# they load.
import importlib.abc
import importlib.machinery
import importlib.metadata
import io
import os
import re
import sys

# Large parts of the standard library a step cannot use (GUI, tests, pip).
_SKIP = {
    "__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip",
    "lib2to3", "pydoc_data", "venv",
}
_MAX_DATA_FILE = 4 << 20

_modules = {}  # name -> (file name, is package)
_files = {}  # path -> compressed bytes (sources and package data)
_dirs = {}  # directory -> sorted child names
_distributions = {}  # normalized project name -> its `*.dist-info` directory


def _index(root):
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP)
        relative = os.path.relpath(directory, root)
        parts = [] if relative == "." else relative.split(os.sep)
        in_package = bool(parts) and all(p.isidentifier() for p in parts)
        children = _dirs.setdefault(directory, set())
        children.update(subdirs)
        for name in files:
            path = os.path.join(directory, name)
            if name.endswith((".pyc", ".so")):
                continue
            if name.endswith(".py") and (not parts or in_package):
                module = parts + ([] if name == "__init__.py" else [name[:-3]])
                if module:
                    _modules.setdefault(".".join(module), (path, name == "__init__.py"))
            elif not parts or os.path.getsize(path) > _MAX_DATA_FILE:
                continue
            if path not in _files:
                with open(path, "rb") as file:
                    # Kept as they are: compressing the whole library inside the
                    # interpreter cost every build ~0.5 s (the component is
                    # ~7 MB larger, mapped copy-on-write, never copied per run).
                    _files[path] = file.read()
                children.add(name)


def _read(path):
    data = _files.get(path)
    if data is None:
        raise FileNotFoundError(2, "No such file in the step's bundle", path)
    return data


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__spec__.name
        path = _modules[name][0]
        exec(compile(_read(path), path, "exec", dont_inherit=True), module.__dict__)

    def get_source(self, fullname):
        entry = _modules.get(fullname)
        return None if entry is None else _read(entry[0]).decode("utf-8", "replace")

    def is_package(self, fullname):
        return _modules[fullname][1]

    def get_data(self, path):
        return _read(path)

    def get_resource_reader(self, fullname):
        from importlib.resources.abc import TraversableResources

        directory = os.path.dirname(_modules[fullname][0])

        class Reader(TraversableResources):
            def files(self):
                return _traversable(directory)

        return Reader()


def _traversable(path):
    from importlib.resources.abc import Traversable

    class Node(Traversable):
        def __init__(self, path):
            self.path = path

        @property
        def name(self):
            return os.path.basename(self.path)

        def is_dir(self):
            return self.path in _dirs

        def is_file(self):
            return self.path in _files

        def iterdir(self):
            return iter([Node(os.path.join(self.path, c)) for c in sorted(_dirs.get(self.path, ()))])

        def joinpath(self, *parts):
            return Node(os.path.join(self.path, *parts))

        __truediv__ = joinpath

        def open(self, mode="r", *args, **kwargs):
            data = io.BytesIO(_read(self.path))
            return data if "b" in mode else io.TextIOWrapper(data, *args, **kwargs)

        def __repr__(self):
            return f"<bundled {self.path}>"

    return Node(path)


_LOADER = _Loader()


def _normalized(name):
    """A project name as `importlib.metadata` compares them (PEP 503, `_`)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _index_distributions(root):
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        if name.endswith(".dist-info") and os.path.join(directory, "METADATA") in _files:
            _distributions.setdefault(_normalized(name[: -len(".dist-info")].split("-")[0]), directory)


class _Distribution(importlib.metadata.Distribution):
    """An installed package's metadata, read from the bundle."""

    def __init__(self, directory):
        self._directory = directory

    def read_text(self, filename):
        try:
            return _read(os.path.join(self._directory, filename)).decode("utf-8")
        except FileNotFoundError:
            return None

    def locate_file(self, path):
        return _traversable(os.path.join(os.path.dirname(self._directory), str(path)))


class _Finder(importlib.metadata.DistributionFinder):
    def find_spec(self, fullname, path=None, target=None):
        entry = _modules.get(fullname)
        if entry is None:
            return None
        file_name, is_package = entry
        spec = importlib.machinery.ModuleSpec(fullname, _LOADER, origin=file_name, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(file_name)]
        return spec

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):
        """The bundled distributions `context.name` names (all without a name)."""
        if context.name is None:
            return iter([_Distribution(d) for d in _distributions.values()])
        directory = _distributions.get(_normalized(context.name))
        return iter([] if directory is None else [_Distribution(directory)])


def install():
    """Indexes the build's path (once, at build time) and puts the finder first."""
    if not _modules:
        for root in sys.path:
            if os.path.isdir(root):
                _index(root)
                _index_distributions(root)
        # Sets, for the build only; sorted lists keep `iterdir` stable.
        for directory, children in _dirs.items():
            _dirs[directory] = sorted(children)
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
