"""Make the plain-Python packages importable without installing them.

Every plain core inside an Odoo addon is loaded one way: by path, as a
top-level package named after its addon (``prepaid_metering_drivers``,
``prepaid_metering_tools``, ``prepaid_billing_tools``,
``prepaid_wechat_tools``). Importing them through ``odoo.addons`` would run
the addons' ``__init__``, which imports Odoo; and three of them are called
``tools``. ``simulator`` sits at the repo root, a package of its own.
"""

import importlib.util
import sys
from pathlib import Path

import psycopg2
import pytest

_ROOT = Path(__file__).resolve().parent.parent
#: top-level name -> the addon's plain package
PLAIN_PACKAGES = {
    "prepaid_metering_drivers": "addons/prepaid_metering/drivers",
    "prepaid_metering_tools": "addons/prepaid_metering/tools",
    "prepaid_billing_tools": "addons/prepaid_billing/tools",
    "prepaid_wechat_tools": "addons/prepaid_wechat/tools",
    "prepaid_tenancy_tools": "addons/prepaid_tenancy/tools",
}

if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


def _load_plain(name, directory):
    """Register the package in ``directory`` as ``name`` (its modules import
    each other relatively, so they load under it too)."""
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


for _name, _directory in PLAIN_PACKAGES.items():
    _load_plain(_name, _ROOT / _directory)


@pytest.fixture
def cr():
    """A cursor on the local PostgreSQL (database ``postgres``), rolled back
    at the end: the tests that need one make their own temporary tables."""
    try:
        conn = psycopg2.connect(dbname="postgres")
    except psycopg2.OperationalError:  # pragma: no cover - CI has PostgreSQL
        pytest.skip("no PostgreSQL")
    try:
        yield conn.cursor()
    finally:
        conn.rollback()
        conn.close()


try:
    import pytest_odoo  # noqa: F401 - only to know whether the plugin is there
except ImportError:
    pass
else:

    @pytest.fixture(scope="session", autouse=True)
    def load_registry():
        """Keep pytest-odoo from opening an Odoo registry for these tests.

        pytest-odoo's own session fixture of this name loads the registry of
        ``--odoo-database`` for every run; the tests in this folder need no
        database, so the run stays plain Python with or without the plugin.
        """
        yield
