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

__all__ = ["BACKEND", "ProcessGroupSilk", "hooks"]

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
# Operations still in flight at exit would complete during interpreter
# finalization, when their future callbacks can no longer take the GIL; and a
# group that is never destroyed (DDP holds it) would end without a goodbye.
atexit.register(_C._shutdown_all, 30.0)

from silk.torch import hooks  # noqa: E402  (after registration: hooks use the backend)
