from . import test_tenancy
