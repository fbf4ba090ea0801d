from . import prepaid_meter_params_wizard
from . import prepaid_reading_review_wizard
from . import prepaid_meter_replace_wizard
