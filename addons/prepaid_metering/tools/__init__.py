"""Plain-Python helpers used by the models (no Odoo import)."""
