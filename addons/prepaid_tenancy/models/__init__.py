from . import (
    account_move,
    prepaid_account,
    prepaid_room,
    prepaid_tenancy,
    prepaid_tenancy_batch,
    prepaid_tenancy_demo,
    prepaid_tenancy_reading,
    prepaid_tenancy_settlement,
    res_company,
    res_config_settings,
)
