"""Every error class of nova_rt.

The class names are part of the RPC contract (``shared/spec/rpc-api.md``): they
cross the wire as oslo.messaging remote exceptions, so a conductor sees
``RemoteError.exc_type == 'ComputeResourcesUnavailable'`` or, when it lists
``nova_rt.exception`` in ``allowed_remote_exmods``, the class itself.

Messages are written for a person who has to act on them and never carry a
secret.  Instances are built from keyword arguments, as in Nova, so that
oslo.messaging can re-create them on the caller's side.
"""


class NovaRtException(Exception):
    """Base class: ``msg_fmt`` formatted with the keyword arguments."""

    msg_fmt = "An unknown error occurred."

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # A caller that forgot an argument still gets a message.
                message = self.msg_fmt
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self):
        return self.message


class InvalidInput(NovaRtException):
    msg_fmt = "Invalid input: %(reason)s"


class ConfigError(NovaRtException):
    """A configuration value that stops the service at start."""

    msg_fmt = "Invalid configuration: %(reason)s"


class ComputeResourcesUnavailable(NovaRtException):
    msg_fmt = "Insufficient compute resources: %(reason)s"


class ClaimConflict(NovaRtException):
    msg_fmt = "Claim conflict: %(reason)s"


class InstanceNotFound(NovaRtException):
    msg_fmt = "Instance %(instance_uuid)s is not tracked on this host."


class MigrationNotFound(NovaRtException):
    msg_fmt = "Migration %(migration_uuid)s is not tracked on this host."


class NodeNotFound(NovaRtException):
    msg_fmt = "Node %(nodename)s is not managed by this host (node is %(node)s)."


class PciDeviceNotFound(NovaRtException):
    msg_fmt = "PCI device %(address)s not found: %(reason)s"


class HypervisorUnavailable(NovaRtException):
    msg_fmt = "The hypervisor cannot be reached: %(reason)s"


class ResourceProviderNotFound(NovaRtException):
    msg_fmt = "Resource provider %(uuid)s not found."


class ResourceProviderGenerationConflict(NovaRtException):
    msg_fmt = ("Resource provider %(uuid)s generation conflict: expected "
               "%(expected)s, current %(current)s. Refresh and retry.")


class InventoryInUse(NovaRtException):
    msg_fmt = "Inventory in use: %(reason)s"


class ConsumerGenerationConflict(NovaRtException):
    msg_fmt = "Consumer %(consumer_uuid)s generation conflict: %(reason)s"


class InvalidAllocation(NovaRtException):
    msg_fmt = "Invalid allocation: %(reason)s"


class AllocationCapacityExceeded(NovaRtException):
    msg_fmt = "Allocation exceeds capacity: %(reason)s"


class NotAuthorized(InvalidInput):
    """The sender may not do this (``doc/source/security.rst``): a host
    writing to a provider it does not own, or, with ``[identity] enforce``,
    a message unsigned, wrongly signed, replayed or from a principal that may
    not call the method; on a client, an answer not signed by the principal
    called.  Nothing changed.  An ``InvalidInput`` too, for callers that
    predate the name.
    """

    msg_fmt = "Not authorized: %(reason)s"


class NotFound(NovaRtException):
    """A thing the REST API was asked about does not exist (404); not an
    RPC error."""

    msg_fmt = "%(reason)s"


class Conflict(NovaRtException):
    """The REST API's 409 for what has no class of the contract (a
    duplicate name, a thing in use); ``code`` is Placement's error code."""

    msg_fmt = "%(reason)s"


class LocalStoreError(NovaRtException):
    """The compute daemon's local state store cannot be used as it is.

    Not an RPC error: nova-rt-compute refuses to start with this one line
    (naming the file and what to do) rather than run on claims it does not
    have; ``nova-rt-manage store recover`` reports it too.
    """

    msg_fmt = "Local state store %(path)s: %(reason)s"


class LocalStoreCorrupt(LocalStoreError):
    """Not a database, a failed integrity check, or rows that do not parse."""


class LocalStoreLost(LocalStoreError):
    """Missing or empty while placement holds allocations for this host,
    or placement could not be asked whether it does."""


#: The names a conductor may see, as the contract lists them.
RPC_ERRORS = (
    InvalidInput, ComputeResourcesUnavailable, ClaimConflict,
    InstanceNotFound, MigrationNotFound, NodeNotFound, PciDeviceNotFound,
    ResourceProviderNotFound, ResourceProviderGenerationConflict,
    InventoryInUse, ConsumerGenerationConflict, InvalidAllocation,
    AllocationCapacityExceeded, HypervisorUnavailable,
)
