from . import models
from . import wizards
from . import report


def uninstall_hook(env):
    # the daily use's triggers on tables that stay (res_partner, res_company)
    models.prepaid_daily_usage_labels.drop_forget_triggers(env.cr)
    # the meters' billing state (a table of its own, not a model's)
    env.cr.execute("DROP TABLE IF EXISTS prepaid_meter_billing")
