"""Packaging: everything is in pyproject.toml except the package list, which needs code.

The runner's Hydra configs ship inside the package: the checkout's top-level ``configs/`` folder
(the only copy) is installed as the package ``mmgraph._configs`` (``mmgraph/_configs/**/*.yaml``
in a wheel; its package data is declared in pyproject.toml). ``mmgraph.paths.config_dir()``
reads it there when mmgraph runs from an installed wheel rather than a source checkout.
pyproject.toml cannot add a package that lives outside the discovered tree to the discovered
packages, hence this file.
"""
from setuptools import find_namespace_packages, setup

CONFIGS = "mmgraph._configs"
setup(
    packages=[*find_namespace_packages(include=["mmgraph", "mmgraph.*"]),
              # the config groups (configs/dataset, ...) as its sub-packages, so that setuptools
              # does not warn about data folders missing from `packages`
              CONFIGS, *(f"{CONFIGS}.{group}" for group in find_namespace_packages(where="configs"))],
    package_dir={CONFIGS: "configs"},
)
