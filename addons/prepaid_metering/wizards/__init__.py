from . import prepaid_meter_params_wizard
