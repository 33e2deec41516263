"""provisioner/mailauth on table resolvers: no test here may reach the system resolver."""

from tests.check.conftest import no_system_resolver  # noqa: F401 - the fixture, applied here too
