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
import collections
import inspect
import os

import torch  # noqa: F401  (loads libtorch and registers torch's pybind11 types first)
import torch.distributed as dist

from silk.torch import _C

__all__ = ["BACKEND", "ProcessGroupSilk", "Reconfiguration", "hooks", "membership", "finish_job", "reconfigure", "rejoin", "stats"]

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


class Reconfiguration(collections.namedtuple("Reconfiguration", "group epoch lost joined rejoined seconds")):
    """What silk.torch.reconfigure did: the group to use from now on, the
    membership's number, the member ids lost and admitted, whether this
    process had been left out and was admitted again, and how long it took."""


def _silk_group(group, what):
    pg = group if group is not None else dist.distributed_c10d._get_default_group()
    if not isinstance(pg, ProcessGroupSilk):
        raise TypeError(f"silk.torch.{what} needs a silk process group, not {type(pg).__name__}")
    return pg


def membership(group=None):
    """An elastic job's membership (SILK_ELASTIC=1; docs/reliability.md): this
    process's ``member`` id, the ``epoch``, the ``members`` by rank, and the
    ``join_requests`` made so far against those the membership
    ``answered_join_requests``."""
    return _C.membership(_silk_group(group, "membership"))


def reconfigure(group=None, admit_up_to=-1):
    """Elastic jobs: after a collective raised because a rank was lost, every
    surviving rank calls this; they agree on who is still here and go on as a
    smaller group (ranks renumbered densely, in member order). With
    ``admit_up_to`` set to a count of join requests every rank agreed on (e.g.
    the MAX all-reduce of ``membership()["join_requests"]``), restarted
    processes are admitted too. torch fixes a group's rank and size when it is
    made, so this returns a new group (``Reconfiguration.group``) over the same
    communicator; the old one raises from then on. When ``group`` is the
    default group, the new one replaces it, so ``dist.get_rank()``,
    ``dist.get_world_size()`` and collectives without a group follow.
    A DDP model must be wrapped again with the new group. The training state
    is the caller's to make equal again (e.g. broadcast from a survivor)."""
    old = _silk_group(group, "reconfigure")
    default = dist.distributed_c10d._get_default_group()
    new, epoch, lost, joined, rejoined, seconds = _C.reconfigure(old, admit_up_to)
    if old is default:
        c10d = dist.distributed_c10d
        c10d._update_default_pg(new)
        c10d._pg_map[new] = c10d._pg_map.pop(old)
        c10d._pg_names[new] = c10d._pg_names.pop(old)
        c10d._pg_group_ranks.pop(old, None)
        c10d._pg_group_ranks[new] = {r: r for r in range(new.size())}
    return Reconfiguration(new, epoch, list(lost), list(joined), rejoined, seconds)


def finish_job(group=None):
    """Elastic jobs: every rank has finished its work. Processes still asking
    to be admitted (a rank restarted late) are told so, and their
    ``rejoin()`` raises instead of waiting out SILK_ELASTIC_REJOIN_TIMEOUT.
    Call it once all ranks agree the run is over (e.g. after a last
    collective)."""
    _C.mark_job_finished(_silk_group(group, "finish_job"))


def rejoin(timeout=None):
    """Elastic jobs: a restarted member (its launcher started it again with
    the next SILK_ELASTIC_INCARNATION) joins the running job, instead of
    ``init_process_group``: PyTorch's rendezvous would wait at its store
    barrier for the whole world. Asks the coordinator to be admitted, waits
    until the members admit it (their next agreement on join requests, see
    ``reconfigure``), and makes the resulting group torch's default group.
    The training state is then the caller's to receive (e.g. a broadcast from
    a member that held it). ``timeout`` is the group's operation timeout."""
    c10d = dist.distributed_c10d
    if c10d.GroupMember.WORLD is not None:
        raise RuntimeError("silk.torch.rejoin: torch.distributed is already initialised in this process")
    store = dist.HashStore()  # the group's rendezvous is the coordinator's; torch wants a store beside it
    group_timeout = timeout if timeout is not None else c10d.default_pg_timeout
    pg = _C.create_process_group(store, int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                                 group_timeout)
    if not _C.membership(pg)["elastic"]:
        raise RuntimeError("silk.torch.rejoin needs an elastic launch (SILK_ELASTIC=1 with a silk-coordinator)")
    c10d._update_default_pg(pg)
    c10d._pg_map[pg] = (BACKEND, store)
    c10d._pg_names[pg] = "silk-rejoined"
    c10d._pg_group_ranks[pg] = {r: r for r in range(pg.size())}
    c10d._backend = BACKEND
    return pg


# Operations still in flight at exit would complete during interpreter
# finalization, when their future callbacks can no longer take the GIL; and a
# group that is never destroyed (DDP holds it) would end without a goodbye.
atexit.register(_C._shutdown_all, 30.0)

from silk.torch import hooks  # noqa: E402  (after registration: hooks use the backend)
