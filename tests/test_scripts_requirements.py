"""scripts/requirements_check.py: which requirements make the scripts run pip."""

import importlib.util
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "requirements_check", REPO / "scripts" / "requirements_check.py"
)
requirements_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(requirements_check)


def installed(**versions):
    """A version_of() for an interpreter with exactly ``versions``."""

    def version_of(name):
        try:
            return versions[name.lower().replace("-", "_")]
        except KeyError:
            raise metadata.PackageNotFoundError(name) from None

    return version_of


PROJECT = requirements_check.read_requirements(REPO / "requirements.txt")


def test_project_requirements_are_read_with_versions():
    assert PROJECT == [
        "pymodbus>=3.16.1,<3.17",
        "pyserial-asyncio>=0.6",
        "websocket-client>=1.6",
    ]


def test_all_met():
    version_of = installed(
        pymodbus="3.16.1", pyserial_asyncio="0.6", websocket_client="1.9.2"
    )
    assert requirements_check.unmet(PROJECT, version_of) == []


@pytest.mark.parametrize(
    "versions, problem",
    [
        (
            {"pymodbus": "3.16.1", "pyserial_asyncio": "0.6"},
            "websocket-client>=1.6 (missing)",
        ),
        (
            {
                "pymodbus": "3.16.0rc1",
                "pyserial_asyncio": "0.6",
                "websocket_client": "1.9",
            },
            "pymodbus>=3.16.1,<3.17 (installed: 3.16.0rc1)",
        ),
        (
            {
                "pymodbus": "3.17.0",
                "pyserial_asyncio": "0.6",
                "websocket_client": "1.9",
            },
            "pymodbus>=3.16.1,<3.17 (installed: 3.17.0)",
        ),
        (
            {
                "pymodbus": "3.16.2",
                "pyserial_asyncio": "0.6",
                "websocket_client": "1.5.3",
            },
            "websocket-client>=1.6 (installed: 1.5.3)",
        ),
    ],
)
def test_one_unmet_requirement_is_reported(versions, problem):
    assert requirements_check.unmet(PROJECT, installed(**versions)) == [problem]


def test_markers_and_odd_lines():
    lines = [
        "lxml-html-clean; python_version >= '4'",  # marker false: met
        "Babel==2.10.3 ; python_version >= '3'",
        "git+https://example.invalid/x.git",
        "name @ https://example.invalid/x.zip",
    ]
    problems = requirements_check.unmet(lines, installed(babel="2.10.3"))
    assert problems == [
        "git+https://example.invalid/x.git (cannot check this requirement)",
        "name @ https://example.invalid/x.zip (cannot check a URL requirement)",
    ]


def test_requirement_files_with_includes_and_comments(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.txt").write_text(
        "# comment\n\npolib==1.1.1  # pinned\n-r ../top.txt\n"
    )
    (tmp_path / "top.txt").write_text(
        "--index-url https://example.invalid\n-r sub/base.txt\n"
        "--requirement=other.txt\npytz\n"
    )
    (tmp_path / "other.txt").write_text("-c constraints.txt\nxlwt==1.3.0\n")
    lines = requirements_check.read_requirements(tmp_path / "top.txt")
    assert lines == ["polib==1.1.1", "xlwt==1.3.0", "pytz"]


def test_main_exit_codes(tmp_path, capsys):
    assert requirements_check.main(["-r", str(REPO / "requirements-dev.txt")]) in (0, 1)
    capsys.readouterr()
    assert requirements_check.main(["surely-not-installed-xyz>=1"]) == 1
    assert "surely-not-installed-xyz>=1 (missing)" in capsys.readouterr().out
    assert requirements_check.main(["-r", str(tmp_path / "none.txt")]) == 2
