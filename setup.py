"""Installs the repository's top-level packages under one namespace: ``runtime/`` as ``runtime``,
``dag/`` as ``dag``, ... (setuptools' package-dir mapping; pyproject.toml holds everything else)."""

from setuptools import find_packages, setup

TOP = ("runtime", "dag", "tools", "kvcache", "kernels", "agents")

setup(
    packages=["tether"] + [f"tether.{p}" for p in find_packages(include=[f"{t}*" for t in TOP])],
    package_dir={"tether": "tether", **{f"tether.{t}": t for t in TOP}},
)
