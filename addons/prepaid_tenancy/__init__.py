from . import controllers, models, report, wizards


def post_init_hook(env):
    """Every company with a chart of accounts gets its tenant deposits
    account (a company made later gets it at its first deposit)."""
    for company in env["res.company"].search([]):
        if company.chart_template:
            company._prepaid_deposit_account()
