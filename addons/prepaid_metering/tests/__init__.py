from . import test_locations_validation
from . import test_polling
from . import test_commands
from . import test_concurrency
from . import test_security
from . import test_command_recovery
from . import test_bus_claim
from . import test_plausibility
