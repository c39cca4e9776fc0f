"""Check that the lowest-versions environment really holds every floor pyproject.toml declares.

``uv pip install --resolution lowest-direct`` picks the lowest version of each direct
dependency *that resolves*: a floor that cannot be installed (its wheels missing, or a
conflict with another requirement) is silently replaced by a higher version, and the floor
would then be a claim no test backs. This compares each ``name>=X`` of the dependencies and
of the extras the suite installs (test, and the extras it names) with what is installed,
and fails naming every floor that was not the version installed.

    python .ci/check_floors.py pyproject.toml
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

SELF = "jobman-nb"


def requirements(project: dict, extras: list[str]) -> list[Requirement]:
    """The project's requirements and those of *extras*, following self-references."""
    out, seen, todo = list(map(Requirement, project["dependencies"])), set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == SELF:
                todo += sorted(req.extras)
            else:
                out.append(req)
    return out


def main(path: str) -> int:
    with open(path, "rb") as f:
        project = tomllib.load(f)["project"]
    wrong = []
    for req in requirements(project, ["test"]):
        floors = [s.version for s in req.specifier if s.operator == ">="]
        if not floors:
            continue
        try:
            have = version(req.name)
        except PackageNotFoundError:
            wrong.append(f"{req}: not installed")
            continue
        if Version(have) != Version(floors[0]):
            wrong.append(f"{req}: {have} was installed, not the floor {floors[0]}")
        else:
            print(f"floor {req.name} {have}")
    for line in wrong:
        print(f"FLOOR NOT TESTED: {line}", file=sys.stderr)
    if wrong:
        print("raise these floors to the versions installed (or make the floor installable)", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
