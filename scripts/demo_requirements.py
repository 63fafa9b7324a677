#!/usr/bin/env python3
"""Print the Python requirements a running Home Assistant needs for the demo.

The demo's configuration loads ``default_config``. Home Assistant installs the requirements
of those integrations (the frontend among them) with pip at its first start; the demo
installs them beforehand instead, pinned exactly as the installed Home Assistant release
pins them, with its ``package_constraints.txt`` as constraints.

Usage: demo_requirements.py [--missing] [--constraints]
  --missing      only requirements not yet satisfied in this environment
  --constraints  print the path of Home Assistant's package_constraints.txt and exit
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import homeassistant
from packaging.requirements import Requirement

COMPONENTS = Path(homeassistant.__file__).parent / "components"
CONSTRAINTS = Path(homeassistant.__file__).parent / "package_constraints.txt"
ROOTS = ("default_config",)


def _manifest(domain: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((COMPONENTS / domain / "manifest.json").read_text())
    return data


def integrations(roots: tuple[str, ...] = ROOTS) -> set[str]:
    """Return the integrations ``roots`` load, dependencies included."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        domain = todo.pop()
        if domain in seen or not (COMPONENTS / domain / "manifest.json").is_file():
            continue
        seen.add(domain)
        manifest = _manifest(domain)
        for key in ("dependencies", "after_dependencies"):
            todo.extend(str(d) for d in manifest.get(key, []))  # type: ignore[attr-defined]
    return seen


def requirements(roots: tuple[str, ...] = ROOTS) -> list[str]:
    """Return the pinned requirements of the integrations ``roots`` load, sorted."""
    found = {
        str(r)
        for domain in integrations(roots)
        for r in _manifest(domain).get("requirements", [])  # type: ignore[attr-defined]
    }
    return sorted(found, key=str.lower)


def satisfied(requirement: str) -> bool:
    """Return True when the installed distribution satisfies ``requirement``."""
    req = Requirement(requirement)
    try:
        return req.specifier.contains(version(req.name), prereleases=True)
    except PackageNotFoundError:
        return False


def main(argv: list[str]) -> int:
    """Print the requirements, one a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true")
    parser.add_argument("--constraints", action="store_true")
    args = parser.parse_args(argv)
    if args.constraints:
        print(CONSTRAINTS)
        return 0
    for requirement in requirements():
        if not args.missing or not satisfied(requirement):
            print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
