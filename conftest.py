"""Top-level conftest: the project's own test-suite settings.

Config files kept as test data live under tests/data and must not be collected as
deployments of this repository.
"""

# The plugin imports these lazily (to keep every pytest start-up fast). pytester's
# in-process runs drop modules first imported inside them, which would leave two copies
# of requests' and http.cookiejar's classes alive: import them once, up front.
import jsonschema  # noqa: F401
import requests  # noqa: F401

import deploy_plugin.engine.health  # noqa: F401

collect_ignore = ["tests/data"]
