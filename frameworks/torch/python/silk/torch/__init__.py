"""Silk as a torch.distributed backend.

Importing this package registers the backend ``"silk"``::

    import torch.distributed as dist
    import silk.torch

    dist.init_process_group("silk")          # env:// (torchrun, or MASTER_ADDR/PORT, RANK, WORLD_SIZE)
    dist.all_reduce(tensor)                   # runs on Silk's engine thread

The group's ``timeout`` is Silk's per-operation timeout; every other setting
comes from the ``SILK_*`` environment variables (see docs/pytorch.md).
``silk.torch.hooks`` has DDP communication hooks and a periodic (DiLoCo-style)
averager for high-latency links.
"""
import atexit
import inspect

import torch  # noqa: F401  (loads libtorch and registers torch's pybind11 types first)
import torch.distributed as dist

from silk.torch import _C

__all__ = ["BACKEND", "ProcessGroupSilk", "hooks", "stats"]

BACKEND = "silk"
ProcessGroupSilk = _C.ProcessGroupSilk


def _register():
    if hasattr(dist.Backend, BACKEND.upper()):  # registered already (e.g. a second copy of the package)
        return
    kwargs = {}
    if "devices" in inspect.signature(dist.Backend.register_backend).parameters:
        kwargs["devices"] = ["cpu"]  # PyTorch 2.x: CPU tensors only, for now
    dist.Backend.register_backend(BACKEND, _C.create_process_group, **kwargs)


_register()


def stats(group=None):
    """Counters of a silk group (the default group when None) since it was made:
    payload bytes sent and received per tier (``node_*``, ``region_*``,
    ``wan_*``: peers on this node, elsewhere in this region, in other regions;
    per connection, so groups split from one another share them), operations
    completed (``collectives``, ``point_to_point``, ``failed``) and their summed
    running times in seconds."""
    pg = group if group is not None else dist.distributed_c10d._get_default_group()
    if not isinstance(pg, ProcessGroupSilk):
        raise TypeError(f"silk.torch.stats needs a silk process group, not {type(pg).__name__}")
    return pg.stats()
# Operations still in flight at exit would complete during interpreter
# finalization, when their future callbacks can no longer take the GIL; and a
# group that is never destroyed (DDP holds it) would end without a goodbye.
atexit.register(_C._shutdown_all, 30.0)

from silk.torch import hooks  # noqa: E402  (after registration: hooks use the backend)
