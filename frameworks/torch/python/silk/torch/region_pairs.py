"""The ``delayed`` hook's exchange when its local group is a region and every
region has as many ranks (DelayedState(local_group=...) on the default group).

Done the general way, a step all-reduces each bucket inside the region (the
fresh term) and again over every rank (the average applied a step later): the
region's links carry the gradient twice, once more than plain DDP, and on a
busy host that second pass is what the step pays for. Here, per bucket, at
step t, on the rank of index k of its region (n ranks a region, m regions):

- the region's all-reduce of gradient / n, with shard k of the previous step's
  correction d_{t-1} = avg_{t-1} - local_{t-1} added by this rank: every rank
  of the region gets local_t + d_{t-1}, the update itself, in the bucket;
- once the step's region all-reduces are done, shard k of local_t (the result
  less what was added) is averaged with shard k of the other regions' ranks
  of index k (an m-rank all-reduce across regions, one pair group per index),
  during the next step.

A step then moves what plain DDP's region-aware all-reduce moves: inside the
region a reduce-scatter's and an all-gather's worth, across it each shard once.
The arithmetic is the general way's (up to rounding); replicas in a region
stay identical.
"""
import torch
import torch.distributed as dist


class RegionPairs:
    """This rank's region, its index in it, and its group across regions."""

    def __init__(self, local_group, region_size, regions, index, across):
        self.local_group = local_group
        self.region_size = region_size
        self.regions = regions
        self.index = index
        self.across = across

    @staticmethod
    def build(local_group):
        """Collective over the default group. None unless the local groups are
        regions of equal size that partition the job (the general way then)."""
        world, rank = dist.get_world_size(), dist.get_rank()
        mine = sorted(dist.get_process_group_ranks(local_group))
        every = [None] * world
        dist.all_gather_object(every, mine)
        regions = sorted({tuple(r) for r in every})
        members = sorted(r for region in regions for r in region)
        if len(regions) < 2 or members != list(range(world)) or len({len(r) for r in regions}) != 1:
            return None
        size = len(regions[0])
        across = [dist.new_group([region[k] for region in regions]) for k in range(size)]  # every rank, in order
        index = mine.index(rank)
        return RegionPairs(local_group, size, len(regions), index, across[index])

    def shard(self, numel, index=None):
        """[lo, hi) of a bucket of `numel` values that region rank `index` (default: this one) exchanges."""
        k = self.index if index is None else index
        return numel * k // self.region_size, numel * (k + 1) // self.region_size


class _Exchange:
    """One bucket's shard on its way across regions."""

    def __init__(self, index, layout, numel, bounds):
        self.index = index  # DDP's bucket index (the order every rank launched them in)
        self.layout = layout  # (parameter key, offset, numel) in the bucket
        self.numel = numel
        self.lo, self.hi = bounds
        self.applied = None  # the shard of the correction added to this step's bucket
        self.local = None  # local_t's shard
        self.averaged = None  # its average over the regions, once `work` completes
        self.work = None

    def result(self):
        if self.work is not None:
            self.work.wait()  # raises (with Silk's message) if the exchange failed
            self.work = None
        return self.averaged

    def correction(self):
        return self.result() - self.local


def _spread(state, pairs):
    """DDP rebuilt its buckets: each previous bucket's correction, whole, per
    parameter (each rank holds one shard; the region gathers them). Collective
    in the region, in bucket order, which every rank shares."""
    corrections = {}
    for exchange in sorted(state._previous.values(), key=lambda e: e.index):
        own = exchange.correction()
        width = -(-exchange.numel // pairs.region_size)
        padded = torch.zeros(width, dtype=own.dtype)
        padded[: own.numel()] = own
        parts = [torch.empty_like(padded) for _ in range(pairs.region_size)]
        dist.all_gather(parts, padded, group=pairs.local_group)
        whole = torch.cat([part[: hi - lo] for k, part in enumerate(parts)
                           for lo, hi in [pairs.shard(exchange.numel, k)]])
        for key, offset, numel in exchange.layout:
            corrections[key] = whole.narrow(0, offset, numel)
    state._previous = {}
    return corrections


def hook(state, bucket, layout, start_across):
    """DelayedState's hook by regions (see above). `start_across(bucket index,
    tensor)` starts the all-reduce (sum) across regions in place."""
    pairs = state._pairs
    buffer = bucket.buffer()
    key = tuple(layout)
    exchange = _Exchange(bucket.index(), layout, buffer.numel(), pairs.shard(buffer.numel()))
    buffer.div_(pairs.region_size)
    before = state._previous.get(key)
    if before is None and state._previous:
        state._corrections = _spread(state, pairs)
    if before is not None:
        exchange.applied = before.correction()
        buffer[exchange.lo:exchange.hi].add_(exchange.applied)
    elif state._corrections:  # each rank adds 1/n of the whole correction: the region's sum adds it once
        whole = torch.zeros_like(buffer)
        for parameter, offset, numel in layout:
            correction = state._corrections.get(parameter)
            if correction is not None:
                whole.narrow(0, offset, numel).copy_(correction)
        buffer.add_(whole, alpha=1.0 / pairs.region_size)
        exchange.applied = whole[exchange.lo:exchange.hi]
    work = dist.all_reduce(buffer, group=pairs.local_group, async_op=True)
    future = torch.futures.Future()
    state._waiting.append((work, exchange, buffer, future))
    state._current[key] = exchange
    if not bucket.is_last():
        return future

    # The step's region all-reduces first, then the exchanges across regions,
    # which have the whole next step to arrive.
    waiting, state._waiting = state._waiting, []
    try:
        for work, _, _, _ in waiting:
            work.wait()
        for _, exchange, reduced, _ in waiting:
            shard = reduced[exchange.lo:exchange.hi]
            exchange.local = shard - exchange.applied if exchange.applied is not None else shard.clone()
            exchange.averaged = exchange.local / pairs.regions  # regions of equal size: the mean of means
            if exchange.hi > exchange.lo:  # a bucket smaller than the region leaves some ranks nothing
                exchange.work = start_across(exchange.index, exchange.averaged)
    except Exception as e:  # never leave DDP waiting on a future nobody completes
        for _, _, _, other in waiting:
            other.set_exception(e)
        raise
    for _, _, reduced, f in waiting:
        f.set_result(reduced)
    state._previous, state._current = state._current, {}
    state._corrections = {}
    state.steps += 1
    return future
