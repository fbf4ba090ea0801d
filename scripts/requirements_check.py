"""Tell whether this interpreter already has every listed requirement.

    python scripts/requirements_check.py [-r FILE]... [REQUIREMENT]...

Prints one line per requirement that is missing or installed at a version
outside its specifier, and exits 1 when there is any (0 when all are met,
2 on a file it cannot read). Requirement files are read the way pip reads
the plain ones: comments, blank lines, ``-r`` includes (relative to the
including file) and environment markers (a requirement whose marker does
not apply to this interpreter is met). Other pip options in a file
(``-c``, ``--index-url``...) are ignored; an editable or URL requirement
cannot be checked and is reported, so that pip gets to install it.

Used by scripts/odoo_env.sh (``ensure_requirements``) with the interpreter
that runs Odoo, so it needs nothing but the standard library and
``packaging`` (pip's vendored copy when ``packaging`` itself is missing).
"""

import re
import sys
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        Requirement = InvalidRequirement = None


def read_requirements(path, _seen=None):
    """The requirement lines of a pip requirements file, includes resolved."""
    path = Path(path).resolve()
    seen = _seen if _seen is not None else set()
    if path in seen:
        return []
    seen.add(path)
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line or line.startswith("#"):
            continue
        include = re.match(r"(?:-r|--requirement)(?:\s*=\s*|\s*)(\S.*)$", line)
        if include:
            lines.extend(read_requirements(path.parent / include.group(1), seen))
        elif line.startswith(("-e", "--editable")):
            lines.append(line)  # cannot be checked: reported by unmet()
        elif not line.startswith("-"):
            lines.append(line)
    return lines


def unmet(lines, version_of=metadata.version):
    """The requirements of ``lines`` this interpreter does not satisfy.

    ``version_of(name)`` returns the installed version of a distribution or
    raises ``importlib.metadata.PackageNotFoundError``.
    """
    if Requirement is None:
        return [f"{line} (cannot check: no 'packaging' module)" for line in lines]
    problems = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            problems.append(f"{line} (cannot check this requirement)")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.url:
            problems.append(f"{line} (cannot check a URL requirement)")
            continue
        try:
            installed = version_of(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{line} (missing)")
            continue
        if requirement.specifier and not requirement.specifier.contains(
            installed, prereleases=True
        ):
            problems.append(f"{line} (installed: {installed})")
    return problems


def main(argv):
    lines = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-r", "--requirement"):
            if not args:
                print("usage: requirements_check.py [-r FILE]... [REQUIREMENT]...")
                return 2
            try:
                lines.extend(read_requirements(args.pop(0)))
            except OSError as error:
                print(f"cannot read requirements: {error}")
                return 2
        else:
            lines.append(arg)
    problems = unmet(lines)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
