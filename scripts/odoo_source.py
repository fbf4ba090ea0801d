"""Odoo source trees for scripts/odoo_env.sh's bootstrap (standard library only).

python scripts/odoo_source.py check DIR
    prints the Odoo series of the source tree DIR ("18.0") and exits 0;
    exits 1 with a message when DIR holds no Odoo source tree
    (odoo/release.py, odoo-bin, requirements.txt).
python scripts/odoo_source.py unpack ARCHIVE DEST
    unpacks ARCHIVE (.tar.gz, .tgz, .tar.bz2, .tar.xz, .tar or .zip; a
    local path or an http(s) URL) and moves the Odoo source tree found in
    it (at its top or one folder down, as in GitHub's archives) to DEST,
    which must not exist yet. Exits 1 with a message when that fails.
"""

import runpy
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

REQUIRED = ("odoo/release.py", "odoo-bin", "requirements.txt")


def series(tree):
    """The series ("18.0") of the Odoo source tree ``tree``, or ValueError."""
    tree = Path(tree)
    missing = [name for name in REQUIRED if not (tree / name).is_file()]
    if missing:
        raise ValueError(f"{tree} is not an Odoo source tree (no {', '.join(missing)})")
    try:
        release = runpy.run_path(str(tree / "odoo" / "release.py"))
        major, minor = release["version_info"][:2]
    except Exception as error:  # noqa: BLE001 - any failure means "not Odoo"
        raise ValueError(f"cannot read {tree}/odoo/release.py: {error}") from error
    return f"{major}.{minor}"


def find_tree(folder):
    """The Odoo source tree at ``folder`` or one level below it, or None."""
    folder = Path(folder)
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    for candidate in candidates:
        if all((candidate / name).is_file() for name in REQUIRED):
            return candidate
    return None


def _extract(archive, into):
    name = str(archive).lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as package:
            package.extractall(into)
        return
    with tarfile.open(archive) as package:
        if hasattr(tarfile, "data_filter"):
            package.extractall(into, filter="data")
        else:  # pragma: no cover - Python before 3.11.4
            package.extractall(into)


def unpack(source, dest):
    dest = Path(dest)
    if dest.exists():
        raise ValueError(f"{dest} exists already")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".unpack-") as work:
        archive = Path(source)
        if "://" in str(source):
            suffix = ".zip" if str(source).lower().endswith(".zip") else ".tar.gz"
            archive = Path(work) / f"download{suffix}"
            print(f"Downloading {source}...", flush=True)
            with urllib.request.urlopen(source) as answer, archive.open("wb") as out:
                shutil.copyfileobj(answer, out)
        elif not archive.is_file():
            raise ValueError(f"{source} does not exist")
        content = Path(work) / "content"
        try:
            _extract(archive, content)
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise ValueError(f"cannot unpack {source}: {error}") from error
        tree = find_tree(content)
        if tree is None:
            raise ValueError(
                f"{source} holds no Odoo source tree ({', '.join(REQUIRED)})"
            )
        tree.rename(dest)
        if (dest / "odoo-bin").is_file():
            (dest / "odoo-bin").chmod(0o755)  # zip archives drop the mode


def main(argv):
    try:
        if len(argv) == 2 and argv[0] == "check":
            print(series(argv[1]))
            return 0
        if len(argv) == 3 and argv[0] == "unpack":
            unpack(argv[1], argv[2])
            return 0
    except (ValueError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
