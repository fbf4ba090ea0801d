from odoo import fields, models
from odoo.tools import SQL

# The rows a daily row names, and what deleting one does to the daily rows
# (statement triggers of init(), in place of foreign keys: see _Reference).
REFERENCES = {
    "meter_id": ("prepaid_meter", "delete"),
    "room_id": ("prepaid_room", "set null"),
    "floor_id": ("prepaid_floor", "set null"),
    "building_id": ("prepaid_building", "set null"),
    "site_id": ("prepaid_site", "set null"),
    "company_id": ("res_company", "set null"),
    "account_id": ("prepaid_account", "set null"),
    "partner_id": ("res_partner", "set null"),
}
FORGET = "prepaid_daily_usage_forget"


# The statement trigger function of REFERENCES (arguments: the column, the
# action); it does nothing once the table is gone (see uninstall_hook).
FORGET_FUNCTION = """
    CREATE OR REPLACE FUNCTION prepaid_daily_usage_forget() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF to_regclass('prepaid_daily_usage') IS NULL THEN
            RETURN NULL;
        END IF;
        IF TG_ARGV[1] = 'delete' THEN
            EXECUTE format('DELETE FROM prepaid_daily_usage WHERE %1$I
                            IN (SELECT id FROM prepaid_daily_usage_forget_old)',
                           TG_ARGV[0]);
        ELSE
            EXECUTE format('UPDATE prepaid_daily_usage SET %1$I = NULL
                             WHERE %1$I
                                   IN (SELECT id FROM prepaid_daily_usage_forget_old)',
                           TG_ARGV[0]);
        END IF;
        RETURN NULL;
    END $$
"""


def drop_forget_triggers(cr):
    """Drop the deletion triggers of the daily use (module uninstall)."""
    for column, (table, _action) in REFERENCES.items():
        cr.execute(
            SQL(
                "DROP TRIGGER IF EXISTS %s ON %s",
                SQL.identifier(f"{FORGET}_{column}"),
                SQL.identifier(table),
            )
        )
    cr.execute("DROP FUNCTION IF EXISTS prepaid_daily_usage_forget()")


def create_forget_triggers(cr):
    """Create the deletion triggers of the daily use (``init``)."""
    # What the foreign keys of _Reference would do on deletion, one
    # statement per deleting statement (FORGET_FUNCTION).
    cr.execute(FORGET_FUNCTION)
    for column, (table, action) in REFERENCES.items():
        trigger = SQL.identifier(f"{FORGET}_{column}")
        cr.execute(
            SQL("DROP TRIGGER IF EXISTS %s ON %s", trigger, SQL.identifier(table))
        )
        cr.execute(
            SQL(
                "CREATE TRIGGER %s AFTER DELETE ON %s "
                "REFERENCING OLD TABLE AS prepaid_daily_usage_forget_old "
                "FOR EACH STATEMENT "
                "EXECUTE FUNCTION prepaid_daily_usage_forget(%s, %s)",
                trigger,
                SQL.identifier(table),
                column,
                action,
            )
        )
        # the foreign key of an earlier version, and its record
        name = f"prepaid_daily_usage_{column}_fkey"
        cr.execute(
            SQL(
                "ALTER TABLE prepaid_daily_usage DROP CONSTRAINT IF EXISTS %s",
                SQL.identifier(name),
            )
        )
        cr.execute("DELETE FROM ir_model_constraint WHERE name = %s", [name])


class _Reference(fields.Many2one):
    """A Many2one of the daily use without a foreign key.

    Billing writes thousands of daily rows per batch; a foreign key checks
    each new row against each table it names (eight lookups, each locking the
    row it finds), which cost more than the rest of the daily upkeep together.
    The rows are written from the meter's own row in the same statement (the
    meter, its room, floor, building, site, company, account and tenant), so
    they name existing rows by construction; what a foreign key would still
    do, following deletions, statement triggers on the named tables do
    (``init``, :data:`REFERENCES`): a deleted meter takes its days with it,
    a deleted room, tenant... leaves the days unlabelled.
    """

    def update_db_foreign_key(self, model, column):
        return


class PrepaidDailyUsageLabels(models.AbstractModel):
    """The rows a daily use names: its meter and where the day belongs
    (room, floor, building, site, company, account, tenant), each a
    :class:`_Reference` (mixed into ``prepaid.daily.usage``)."""

    _name = "prepaid.daily.usage.labels"
    _description = "Daily Meter Use: labels"

    meter_id = _Reference(
        "prepaid.meter", required=True, readonly=True, ondelete="cascade"
    )
    room_id = _Reference("prepaid.room", readonly=True, index=True)
    floor_id = _Reference("prepaid.floor", readonly=True)
    building_id = _Reference("prepaid.building", readonly=True)
    site_id = _Reference("prepaid.site", readonly=True)
    company_id = _Reference("res.company", readonly=True)
    # Indexed with the date (prepaid.daily.usage init): the portal reads an
    # account's last days, one index range however long its history.
    account_id = _Reference("prepaid.account", readonly=True)
    partner_id = _Reference("res.partner", string="Tenant", readonly=True)
