"""Plain-Python WeChat Pay APIv3 and official-account clients (no Odoo import)."""
