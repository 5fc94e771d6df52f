"""The synthesizers' packages: whether they are installed (without importing them), and a
package's version for ``data/raw/source.json``."""

from __future__ import annotations


def installed(*modules: str) -> bool:
    """Every one of ``modules`` can be imported (found, not loaded)."""
    from importlib.util import find_spec

    return all(find_spec(module) is not None for module in modules)


def distribution_version(name: str) -> str:
    """The installed version of the distribution ``name``, or "unknown"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
