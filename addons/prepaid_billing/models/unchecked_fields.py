from odoo import fields


class UncheckedMany2one(fields.Many2one):
    """A Many2one whose column has no foreign-key constraint.

    For the references of the wallet's busiest table only: steady billing
    posts one wallet line per reading, and every foreign key of a row is a
    trigger that looks up and locks the row it names, about 10 µs a key and a
    line on this project's 2-core reference machine, four fifths of the
    INSERT of a billing batch (``EXPLAIN ANALYZE`` of 2,000 lines: 46 ms of
    insert, 214 ms of foreign-key triggers).

    A reference declared with it is written by the code that posts the row
    and guarded where the row it names could go away, as the reading charges
    are (``prepaid.reading.charge``): see ``prepaid.ledger.line``.
    """

    def update_db_foreign_key(self, model, column):
        # No constraint, on purpose (see the class); nothing of the ORM's to
        # call (no super).
        return
