"""Plain-Python billing core used by the models (no Odoo import).

``money`` rounds and splits amounts, ``tariff`` prices consumption,
``protection`` decides when a cut-off may run and ``webhook`` signs outgoing
notifications, checks where they may go and sends them.  Everything here is
unit-tested without a database.
"""
