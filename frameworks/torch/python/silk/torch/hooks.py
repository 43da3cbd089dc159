"""Synchronisation policies for training across a high-latency link.

Two ways to keep a wide-area all-reduce off the critical path, usable with any
torch.distributed backend (they are written against torch.distributed only),
and meant for Silk's:

``delayed`` -- a DDP communication hook. Each step's gradient all-reduce runs
in the background while the next step computes, and is applied one step late
(by default as a correction to the local gradient, as Silk's training
runtime's ``delayed`` policy does)::

    state = silk.torch.hooks.DelayedState()
    ddp.register_comm_hook(state, silk.torch.hooks.delayed)
    ...
    state.drain()   # before destroy_process_group: wait for the last all-reduce

``compressed`` -- a DDP communication hook whose all-reduce sends its
cross-region hop as bf16, int8 or int4 (blockwise scales), or topk (the largest
1 in 32 of each block of 256), with error feedback
kept per bucket; inside each region it stays exact, and every rank still gets
the same bits. Needs the silk backend and float32 gradients::

    state = silk.torch.hooks.CompressedState("int8")
    ddp.register_comm_hook(state, silk.torch.hooks.compressed)

It composes with ``delayed``: ``DelayedState(compression="int8")``.

``PeriodicAverager`` -- DiLoCo-style: every rank trains its own replica (no
DDP) and every ``period`` steps the replicas' parameter changes are averaged
and applied with an outer Nesterov-momentum step::

    averager = silk.torch.hooks.PeriodicAverager(model, period=50, outer_lr=0.7, momentum=0.9)
    for batch in data:
        loss(model(batch)).backward(); optimizer.step(); optimizer.zero_grad()
        averager.step()
"""
import torch
import torch.distributed as dist

from silk.torch import region_pairs

__all__ = ["CompressedState", "compressed", "DelayedState", "delayed", "PeriodicAverager"]

COMPRESSIONS = ("none", "bf16", "int8", "int4", "topk")


def _completed_future(tensor):
    future = torch.futures.Future()
    future.set_result(tensor)
    return future


class _Pending:
    """One bucket's all-reduce in flight, and where each parameter's slice lies in it."""

    def __init__(self, work, averaged, local, slices):
        self.work = work
        self.averaged = averaged  # this step's average, once the work completes
        self.local = local  # this step's local gradient (mode "corrected" only)
        self.slices = slices  # parameter key -> (offset, numel)
        self._waited = False

    def result(self):
        if not self._waited:
            self.work.wait()  # raises (with Silk's message) if the all-reduce failed
            self._waited = True
        return self.averaged


class DelayedState:
    """State of the ``delayed`` hook: the all-reduces of the step before.

    ``mode`` chooses what a step applies while its own all-reduce runs:

    - ``"corrected"`` (default; Silk's ``delayed`` policy, as in training/):
      the local gradient now, corrected by how the previous step's average
      differed from the previous local gradient:
      ``local_t + (avg_{t-1} - local_{t-1})`` (just ``local_0`` at step 0).
      Summed over steps this telescopes to every past average plus the latest
      local gradient, so replicas differ only by their latest local step and
      never drift apart for plain SGD; the update still reacts to this step's
      data at once, which keeps momentum optimisers stable.
    - ``"average"``: the previous step's average alone (zeros at step 0).
      Every rank applies the same update, so the replicas stay bit-identical
      (as plain DDP keeps them) whatever the optimizer, at the price of a
      gradient one step stale -- which high momentum amplifies.

    ``local_group`` (mode "corrected"): a group of ranks joined by fast links,
    typically this rank's region. The fresh term is then the group's average
    gradient instead of this rank's own: ``local_t`` and ``local_{t-1}``
    above become the group's averages (one all-reduce inside the group per
    bucket, waited for at the step's last bucket; the exchange across groups
    starts after them, so it never delays them). Only the exchange across
    groups is one step late; replicas in a group stay identical, and the
    correction is far less noisy than one rank's gradient, which matters for
    Adam-like optimizers (their second moment sees the noise of
    ``local_t - local_{t-1}``). When the local groups are regions of equal
    size that partition the job (and ``process_group`` is the default group),
    the exchange across groups carries each rank's shard of its group's
    average and the correction rides in the next step's group all-reduce
    (silk.torch.region_pairs): the fast links then carry what plain DDP's
    region-aware all-reduce moves, not a second all-reduce. Constructing the
    state is then collective over the default group (it makes one group per
    region index, across regions).

    ``process_group`` defaults to the default group. Parameters are tracked
    by their storage, so the hook keeps working when DDP rebuilds its buckets
    after the first step (the previous step's tensors are re-sliced for the
    new layout).
    """

    MODES = ("corrected", "average")

    def __init__(self, process_group=None, mode="corrected", compression=None, error_feedback=True,
                 local_group=None):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES} (got {mode!r})")
        if compression is not None and compression not in COMPRESSIONS:
            raise ValueError(f"compression must be None or one of {COMPRESSIONS} (got {compression!r})")
        self.process_group = process_group
        self.mode = mode
        # With compression: the all-reduce's WAN hop compressed, as in CompressedState.
        self.compression = compression
        self.error_feedback = error_feedback
        self._feedback = {}
        # Mode "corrected": ranks whose average is the fresh term (see above).
        self.local_group = local_group
        self._pairs = None  # region_pairs.RegionPairs, where they apply
        if mode == "corrected" and local_group is not None and \
                (process_group is None or process_group == dist.group.WORLD):
            self._pairs = region_pairs.RegionPairs.build(local_group)
        self._corrections = {}  # parameter key -> whole correction, after DDP rebuilt its buckets
        self._waiting = []  # this step's buckets, with local_group, until its last bucket
        self.steps = 0  # completed steps (counted at each step's last bucket)
        # parameter key -> _Pending (by region pairs: bucket layout -> region_pairs._Exchange)
        self._previous = {}  # from the step before
        self._current = {}  # launched this step
        self._spare = {}  # (numel, dtype) -> tensors of consumed steps, reused (mode "corrected")

    def drain(self):
        """Waits for every all-reduce still in flight (raises if one failed).

        Call before destroy_process_group. The last step's averages are never
        applied: with a one-step delay they belong to a step that is not run.
        """
        for pending in set(self._previous.values()) | set(self._current.values()):
            pending.result()


def _key(parameter):
    return (parameter.data_ptr(), parameter.numel(), parameter.dtype)


def _layout(bucket):
    """(key, offset, numel) for each parameter of the bucket, in buffer order."""
    buffer = bucket.buffer()
    layout = []
    for parameter, gradient in zip(bucket.parameters(), bucket.gradients()):
        offset = gradient.storage_offset() - buffer.storage_offset()
        layout.append((_key(parameter), offset, gradient.numel()))
    return layout


def _gather_previous(state, layout, buffer, pick):
    """The previous step's `pick(pending)` tensor for these parameters, laid
    out like `buffer` (zeros where a parameter has none), or None if no
    parameter has one."""
    previous = [state._previous.get(key) for key, _, _ in layout]
    if all(p is None for p in previous):
        return None
    slices = {key: (offset, numel) for key, offset, numel in layout}
    if all(p is not None and p.slices == slices for p in previous):
        return pick(previous[0])  # same bucket layout as the step before
    out = torch.zeros_like(buffer)
    for (key, offset, numel), before in zip(layout, previous):
        if before is not None:
            old_offset, old_numel = before.slices[key]
            out.narrow(0, offset, numel).copy_(pick(before).narrow(0, old_offset, old_numel))
    return out


def _spare(state, like):
    free = state._spare.get((like.numel(), like.dtype))
    return free.pop() if free else torch.empty_like(like)


def _recycle(state, layout):
    """Hands the previous step's tensors of these parameters back for reuse,
    once every parameter of their bucket has consumed them (when the bucket
    layout is unchanged: one bucket, one consumer)."""
    before = {state._previous.get(key) for key, _, _ in layout}
    if len(before) != 1 or None in before:
        return
    pending = before.pop()
    if set(pending.slices) != {key for key, _, _ in layout}:
        return
    for t in (pending.averaged, pending.local):
        state._spare.setdefault((t.numel(), t.dtype), []).append(t)
    for key in pending.slices:
        del state._previous[key]


def delayed(state, bucket):
    """DDP hook: this step's all-reduce runs in the background and is applied
    one step late (see DelayedState for what is applied meanwhile).

    At step t the hook starts the all-reduce of the bucket's gradient divided
    by the world size, and returns at once: the exchange has all of step t+1's
    forward and backward to arrive, so the link's latency leaves the critical
    path. Register with ``ddp.register_comm_hook(DelayedState(), delayed)``.
    """
    layout = _layout(bucket)
    if state._pairs is not None:
        def start_across(index, tensor):
            if state.compression is not None:
                return _allreduce_compressed(state, index, tensor, average=False, group=state._pairs.across)
            return dist.all_reduce(tensor, group=state._pairs.across, async_op=True)
        return region_pairs.hook(state, bucket, layout, start_across)
    group = state.process_group
    world = dist.get_world_size(group)
    buffer = bucket.buffer()
    corrected = state.mode == "corrected"

    # This step's average, in the background. DDP reuses `buffer` next step: copy.
    # ("corrected" reuses the tensors of the step before last: no allocation,
    # which for buckets of megabytes costs as much as the arithmetic.)
    averaged = torch.div(buffer, world, out=_spare(state, buffer)) if corrected else buffer.div(world)
    local = _spare(state, buffer).copy_(buffer) if corrected else None
    local_work = None
    if corrected and state.local_group is not None:  # the fresh term: the local group's average
        local.div_(dist.get_world_size(state.local_group))
        local_work = dist.all_reduce(local, group=state.local_group, async_op=True)

    def start():
        if state.compression is not None:
            return _allreduce_compressed(state, bucket.index(), averaged, average=False)
        return dist.all_reduce(averaged, group=group, async_op=True)

    # With a local group, the exchange across groups starts once the group's
    # own all-reduces are done (at the last bucket), so that they never queue
    # behind it; it still has the whole next step to arrive.
    work = start() if local_work is None else None
    pending = _Pending(work, averaged, local, {key: (offset, numel) for key, offset, numel in layout})
    for key, _, _ in layout:
        state._current[key] = pending

    average = _gather_previous(state, layout, buffer, lambda p: p.result())
    if local_work is not None:
        # Wait for the group's average at the step's last bucket (as DDP waits
        # for its own all-reduces), so that the buckets' exchanges overlap backward.
        before = _gather_previous(state, layout, buffer, lambda p: p.local) if average is not None else None

        def launch():
            pending.work = start()

        def finish():
            result = buffer.copy_(local)
            if average is not None:
                result.add_(average).sub_(before)
                _recycle(state, layout)
            return result

        future = torch.futures.Future()
        state._waiting.append((local_work, launch, finish, future))
    elif corrected:
        result = buffer  # in place, as DDP's own all-reduce hook returns it
        if average is not None:
            result.add_(average).sub_(_gather_previous(state, layout, buffer, lambda p: p.local))
            _recycle(state, layout)
        future = _completed_future(result)
    else:
        future = _completed_future(average if average is not None else torch.zeros_like(buffer))

    if bucket.is_last():
        waiting, state._waiting = state._waiting, []
        try:
            for local_work, _, _, _ in waiting:  # the groups' all-reduces first, then the exchanges across
                local_work.wait()
            for _, launch, _, _ in waiting:
                launch()
        except Exception as e:  # never leave DDP waiting on a future nobody completes
            for _, _, _, other in waiting:
                other.set_exception(e)
            raise
        for _, _, finish, f in waiting:
            f.set_result(finish())
        state._previous, state._current = state._current, {}
        state.steps += 1
    return future


class CompressedState:
    """State of the ``compressed`` hook.

    ``compression`` is how each bucket's all-reduce crosses regions: "bf16",
    "int8", "int4" or "topk" (or "none", exact; topk drops 31 values in 32
    per call and needs the feedback). With ``error_feedback`` (default),
    what quantisation dropped from a bucket is added to that bucket's next
    all-reduce (one Silk ErrorFeedback per bucket index; when DDP rebuilds
    its buckets after the first step, a bucket whose size changed starts
    afresh). ``process_group`` must be a silk group (default: the default
    group); gradients must be float32 on the CPU.
    """

    def __init__(self, compression="int8", process_group=None, error_feedback=True):
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS} (got {compression!r})")
        self.compression = compression
        self.process_group = process_group
        self.error_feedback = error_feedback
        self._feedback = {}  # bucket index -> (numel, ErrorFeedback)
        self._waiting = []  # this step's (work, future, tensor), completed at its last bucket


def _silk_group(process_group):
    from silk.torch import _C

    group = process_group if process_group is not None else dist.distributed_c10d._get_default_group()
    if isinstance(group, _C.ProcessGroupSilk):
        return group
    if hasattr(group, "_get_backend"):  # PyTorch 2.x: the backend behind the group
        backend = group._get_backend(torch.device("cpu"))
        if isinstance(backend, _C.ProcessGroupSilk):
            return backend
    raise ValueError("a compressed all-reduce needs a process group of backend \"silk\"")


def _allreduce_compressed(holder, index, tensor, average, group=None):
    """Starts Silk's compressed all-reduce of `tensor` in place (over `group`,
    default the holder's process group); the holder keeps the bucket's feedback."""
    from silk.torch import _C

    feedback = None
    if holder.error_feedback and holder.compression != "none":
        numel, feedback = holder._feedback.get(index, (None, None))
        if numel != tensor.numel():
            feedback = _C.ErrorFeedback()
            holder._feedback[index] = (tensor.numel(), feedback)
    group = holder.process_group if group is None else group
    return _C.allreduce_compressed(_silk_group(group), tensor, holder.compression, feedback, average)


def compressed(state, bucket):
    """DDP hook: the bucket's average over ranks by Silk's all-reduce with its
    WAN hop compressed (see CompressedState). Buckets overlap backward as with
    DDP's own hook: each starts at once, and the last bucket's hook waits for
    them all (DDP waits for every bucket only after the last one started).
    """
    buffer = bucket.buffer()
    work = _allreduce_compressed(state, bucket.index(), buffer, average=True)
    future = torch.futures.Future()
    state._waiting.append((work, future, buffer))
    if bucket.is_last():
        waiting, state._waiting = state._waiting, []
        for i, (w, f, t) in enumerate(waiting):
            try:
                w.wait()
            except Exception as e:  # never leave DDP waiting on a future nobody completes
                for _, other, _ in waiting[i:]:
                    other.set_exception(e)
                raise
            f.set_result(t)
    return future


class PeriodicAverager:
    """DiLoCo-style periodic averaging with an outer Nesterov step.

    Every rank trains its own replica with its own (inner) optimizer; call
    ``step()`` after each inner ``optimizer.step()``. Every ``period`` steps
    the replicas' parameter changes since the last synchronisation are
    averaged (one all-reduce per dtype) and applied to the shared anchor with
    an outer SGD step with momentum ``momentum`` (Nesterov by default) and
    learning rate ``outer_lr``; every replica then restarts from the anchor.
    ``outer_lr=1, momentum=0`` is plain periodic model averaging (local SGD).

    ``compression`` ("bf16", "int8", "int4", "topk"; None: exact) sends the outer
    gradient's cross-region hop compressed, with error feedback (what
    quantisation dropped joins the next outer gradient), as the
    ``compressed`` hook does: a shorter period for the same WAN bytes. Needs
    the silk backend and float32 parameters.

    ``overlap``: the outer all-reduce runs while the next inner step
    computes and is applied at the next ``step()`` (one step late, the
    replica's progress during it kept on top of the new anchor), so the WAN's
    latency leaves the critical path; call ``flush()`` after the last step.

    The constructor broadcasts rank 0's parameters so every replica starts
    from the same point. Buffers (e.g. BatchNorm statistics) are not averaged.
    """

    def __init__(self, module, period, outer_lr=0.7, momentum=0.9, nesterov=True, process_group=None,
                 compression=None, error_feedback=True, overlap=False):
        if period < 1:
            raise ValueError(f"period must be >= 1 (got {period})")
        if compression is not None and compression not in COMPRESSIONS:
            raise ValueError(f"compression must be None or one of {COMPRESSIONS} (got {compression!r})")
        self.compression = compression
        self.error_feedback = error_feedback
        self._feedback = {}  # dtype group index -> (numel, ErrorFeedback)
        self.overlap = overlap
        self._inflight = []  # (parameter indices, outer gradient, work, start or None, divide)
        params = module.parameters() if isinstance(module, torch.nn.Module) else module
        self.params = [p for p in params if p.requires_grad]
        self.period = period
        self.outer_lr = outer_lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.process_group = process_group
        self.inner_steps = 0
        self.outer_steps = 0
        with torch.no_grad():
            for group in self._by_dtype(self.params):
                flat = torch.cat([p.detach().reshape(-1) for p in group])
                dist.broadcast(flat, src=self._global_rank(0), group=process_group)
                self._scatter(flat, group)
        self.anchor = [p.detach().clone() for p in self.params]
        self.velocity = [torch.zeros_like(p) for p in self.params]

    def _global_rank(self, group_rank):
        if self.process_group is None:
            return group_rank
        return dist.distributed_c10d._get_global_rank(self.process_group, group_rank)

    @staticmethod
    def _by_dtype(tensors):
        groups = {}
        for t in tensors:
            groups.setdefault(t.dtype, []).append(t)
        return list(groups.values())

    @staticmethod
    def _scatter(flat, tensors):
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def step(self):
        """Counts one inner step; every ``period`` steps, synchronises (with
        ``overlap``: starts synchronising; the outer step lands at the next
        call). Returns True when it started or made an outer step."""
        self.inner_steps += 1
        self.flush()
        if self.inner_steps % self.period != 0:
            return False
        world = dist.get_world_size(self.process_group)
        index = {id(p): i for i, p in enumerate(self.params)}
        with torch.no_grad():
            for number, group in enumerate(self._by_dtype(self.params)):
                ids = [index[id(p)] for p in group]
                # Outer gradient: how far each replica moved from the anchor, averaged.
                delta = torch.cat([(self.anchor[i] - self.params[i].detach()).reshape(-1) for i in ids])
                if self.compression is not None:
                    work = _allreduce_compressed(self, number, delta, average=True)
                else:
                    work = dist.all_reduce(delta, group=self.process_group, async_op=True)
                # Where each replica stood when the exchange started: with overlap,
                # what it learns meanwhile is kept on top of the new anchor.
                start = [self.params[i].detach().clone() for i in ids] if self.overlap else None
                self._inflight.append((ids, delta, work, start, self.compression is None))
        if not self.overlap:
            self.flush()
        return True

    def flush(self):
        """Applies the outer step still in flight, if any (with ``overlap``,
        call it after the last inner step, before using the model)."""
        if not self._inflight:
            return
        world = dist.get_world_size(self.process_group)
        inflight, self._inflight = self._inflight, []
        with torch.no_grad():
            for ids, delta, work, start, divide in inflight:
                work.wait()
                if divide:
                    delta.div_(world)
                offset = 0
                for k, i in enumerate(ids):
                    n = self.params[i].numel()
                    g = delta[offset:offset + n].view_as(self.params[i])
                    offset += n
                    v = self.velocity[i]
                    v.mul_(self.momentum).add_(g)
                    update = g.add(v, alpha=self.momentum) if self.nesterov else v
                    self.anchor[i].sub_(update, alpha=self.outer_lr)
                    if start is None:
                        self.params[i].copy_(self.anchor[i])
                    else:  # the replica's own progress since the exchange began, on the new anchor
                        self.params[i].sub_(start[k]).add_(self.anchor[i])
        self.outer_steps += 1
