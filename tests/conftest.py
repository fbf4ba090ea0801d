"""Make the plain-Python packages importable without installing them.

``drivers`` lives inside the Odoo addon and is imported here as a top-level
package (``from drivers import codec``); ``simulator`` sits at the repo root.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _path in (_ROOT / "addons" / "prepaid_metering", _ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def _load_billing_tools():
    """Register prepaid_billing's ``tools`` as ``prepaid_billing_tools``.

    ``tools`` is also the name of prepaid_metering's package (on sys.path
    above), and prepaid_billing's package ``__init__`` imports Odoo; loading
    the directory by path under a name of its own avoids both.
    """
    import importlib.util

    package = "prepaid_billing_tools"
    tools = _ROOT / "addons" / "prepaid_billing" / "tools"
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package, tools / "__init__.py", submodule_search_locations=[str(tools)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        spec.loader.exec_module(module)


_load_billing_tools()


try:
    import pytest_odoo  # noqa: F401 - only to know whether the plugin is there
except ImportError:
    pass
else:
    import pytest

    @pytest.fixture(scope="session", autouse=True)
    def load_registry():
        """Keep pytest-odoo from opening an Odoo registry for these tests.

        pytest-odoo's own session fixture of this name loads the registry of
        ``--odoo-database`` for every run; the tests in this folder need no
        database, so the run stays plain Python with or without the plugin.
        """
        yield
