"""Installs the repository's top-level folders under one namespace: ``runtime/`` as ``tether.runtime``, ``dag/``
as ``tether.dag``, ... (pyproject.toml holds everything else).

The folders have no ``__init__.py`` (they are namespace portions, so no installed package of the same name is
shadowed, tether/_layout.py); each subpackage's ``__init__.py`` is its face under ``tether/``
(``tether/runtime/__init__.py``). A wheel gets both in one folder: ``build_py`` below takes the face's
``__init__.py`` and the folder's modules. An editable install finds the face under ``tether/``, and the face adds
the folder to its ``__path__``.
"""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

TOP = ("runtime", "dag", "tools", "kvcache", "kernels", "agents")
FACES = {f"tether.{t}": os.path.join("tether", t, "__init__.py") for t in TOP}


class BuildWithFaces(build_py):
    """``tether.runtime``'s ``__init__.py`` comes from ``tether/runtime/``, its other modules from ``runtime/``."""

    def check_package(self, package, package_dir):
        if package in FACES:
            return FACES[package]
        return super().check_package(package, package_dir)

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package in FACES:
            modules.append((package, "__init__", FACES[package]))
        return modules


packages = ["tether"]
for top in TOP:
    packages += [f"tether.{top}"] + [f"tether.{top}.{p}" for p in find_packages(where=top)]

setup(
    packages=packages,
    package_dir={"tether": "tether", **{f"tether.{t}": t for t in TOP}},
    cmdclass={"build_py": BuildWithFaces},
)
