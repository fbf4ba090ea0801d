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
