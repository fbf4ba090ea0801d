from . import test_tariff
from . import test_wallet
from . import test_billing
from . import test_alarms_cutoff
from . import test_meter_side
