"""The kernels package's one exception family.

Host wrappers check every precondition before launching anything and raise
`KernelInputError` with a message that names the tensor and what was expected;
nothing is allocated or written when a check fails.
"""


class KernelError(Exception):
    """Base class of every error raised by `kernels`."""


class KernelInputError(KernelError, ValueError):
    """A caller passed tensors that break a kernel's documented contract."""
