"""Meter profiles: YAML data files, one per meter model, found on a search path.

The search path is, in order: directories passed by the caller, the directories listed in
the environment variable ``GRID_METER_PROFILES`` (separated by ``os.pathsep``), then the
profiles shipped in this package. The first file for an id wins, so a user directory can
add new meters or override a shipped profile without touching code. A file is named after
the profile id it holds (``eastron-sdm630.yaml``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import ProfileError
from .model import Profile

__all__ = [
    "ENV_VAR",
    "PACKAGE_DIR",
    "Profile",
    "all_profiles",
    "load_profile",
    "profile_dirs",
]

#: Environment variable holding extra profile directories.
ENV_VAR = "GRID_METER_PROFILES"
#: Where the shipped profiles live.
PACKAGE_DIR = Path(__file__).resolve().parent
_SUFFIXES = (".yaml", ".yml")


def profile_dirs(extra_dirs: Sequence[Path | str] = ()) -> list[Path]:
    """Return the directories searched for profiles, highest priority first."""
    from_env = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    dirs = [Path(d).expanduser() for d in extra_dirs] + from_env + [PACKAGE_DIR]
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in _SUFFIXES and p.is_file())


def _index(extra_dirs: Sequence[Path | str]) -> dict[str, Path]:
    """Map every profile id on the search path to the file that provides it."""
    found: dict[str, Path] = {}
    for directory in profile_dirs(extra_dirs):
        seen_here: dict[str, Path] = {}
        for path in _files(directory):
            if path.stem in seen_here:
                raise ProfileError(
                    f"{path}: profile {path.stem!r} also defined by {seen_here[path.stem].name}"
                )
            seen_here[path.stem] = path
            found.setdefault(path.stem, path)
    return found


def load_profile(name_or_path: str | Path, extra_dirs: Sequence[Path | str] = ()) -> Profile:
    """Load a profile by id (searched on :func:`profile_dirs`) or by file path.

    Raises :class:`ProfileError` for an unknown id (listing the known ones) or an invalid file.
    """
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix in _SUFFIXES or os.sep in text or "/" in text:
        if not candidate.is_file():
            raise ProfileError(f"profile file {text} does not exist")
        return _load_file(candidate, expect_id=None)
    index = _index(extra_dirs)
    if text not in index:
        known = ", ".join(sorted(index)) or "none"
        raise ProfileError(f"unknown profile {text!r}; known profiles: {known}")
    return _load_file(index[text], expect_id=text)


def all_profiles(extra_dirs: Sequence[Path | str] = ()) -> dict[str, Profile]:
    """Load every profile on the search path, by id (raises ProfileError for a bad file)."""
    return {
        pid: _load_file(path, expect_id=pid) for pid, path in sorted(_index(extra_dirs).items())
    }


def _load_file(path: Path, expect_id: str | None) -> Profile:
    try:
        stat = path.stat()
    except OSError as err:
        raise ProfileError(f"{path}: cannot read: {err.strerror}") from None
    profile = _parse_cached(path.resolve(), stat.st_mtime_ns, stat.st_size)
    if expect_id is not None and profile.id != expect_id:
        raise ProfileError(f"{path}: id: {profile.id!r} does not match the file name {path.name}")
    return profile


@lru_cache(maxsize=128)
def _parse_cached(path: Path, _mtime_ns: int, _size: int) -> Profile:
    # Imported here: schema imports protocols.modbus, which imports this package's model.
    from .schema import parse_profile  # noqa: PLC0415

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProfileError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ProfileError(f"{path}: invalid YAML{line}: {problem}") from None
    return parse_profile(document, path.name)
