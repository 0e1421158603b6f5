# The threading backend must be chosen before oslo.service is imported.
from oslo_service import backend as _backend

try:
    _backend.init_backend(_backend.BackendType.THREADING)
except Exception:   # another package of the run chose it first: fine
    pass

from tests.functional.compute.fixtures import compute_placement  # noqa: E402,F401
from tests.functional.compute.fixtures import compute_stack  # noqa: E402,F401
from tests.functional.compute.fixtures import in_process_compute  # noqa: E402,F401
