"""Byte-level text for examples/pytorch/train_lm.py: the corpus, its fixed
train/held-out split, and the sharded, deterministic sample order.

The corpus is the `fortunes` package's collections (/usr/share/games/fortunes,
Debian package `fortunes`): English quotations, jokes and verse, split at the
`%` lines into about 15,000 fortunes. Every tenth fortune (by its index in the
sorted files) is held out; the rest are joined into one byte stream cut into
non-overlapping samples of seq_len + 1 bytes (input and next-byte target).

Sample order: epoch e is a permutation of all training samples drawn from a
generator seeded with (seed, e); the epochs are laid end to end, and step s's
global batch is positions [s*G, (s+1)*G) of that stream (G = global batch), so
within an epoch no sample is seen twice and none is skipped. A batch may
straddle two epochs; the later epoch's permutation then moves the earlier
one's samples in that batch out of its head, so no batch holds a sample twice. Rank r trains on the r-th slice of each global batch:
runs with the same world size and global batch see the same samples in the
same order, whatever the backend or the policy.
"""
import glob
import os

import torch

FORTUNES = "/usr/share/games/fortunes"
HELDOUT_EVERY = 10  # every tenth fortune is held out


def read_fortunes(directory=FORTUNES):
    """The fortunes of every collection in `directory`, in a fixed order."""
    files = sorted(f for f in glob.glob(os.path.join(directory, "*"))
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8")) and not os.path.islink(f))
    if not files:
        raise FileNotFoundError(f"no fortune collections in {directory} (apt-get install fortunes)")
    fortunes = []
    for path in files:
        with open(path, "rb") as f:
            text = f.read()
        fortunes += [p.strip(b"\n") for p in text.split(b"\n%\n") if p.strip()]
    return fortunes


def split(fortunes):
    """(train bytes, held-out bytes): every HELDOUT_EVERY-th fortune is held out."""
    train = [f for i, f in enumerate(fortunes) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    held = [f for i, f in enumerate(fortunes) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    return b"\n\n".join(train), b"\n\n".join(held)


def to_samples(data, seq_len):
    """Non-overlapping (seq_len + 1)-byte samples, as a [n, seq_len + 1] int64 tensor."""
    n = len(data) // (seq_len + 1)
    flat = torch.frombuffer(bytearray(data[:n * (seq_len + 1)]), dtype=torch.uint8)
    return flat.view(n, seq_len + 1).long()


class ShardedStream:
    """Epoch permutations laid end to end; global batches cut from them; each
    rank takes its slice. `indices(step, rank)` is pure: no state, so any
    step can be replayed or skipped to."""

    def __init__(self, num_samples, global_batch, world_size, seed):
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} must be a multiple of the world size {world_size}")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.world_size = world_size
        self.seed = seed
        self._epochs = {}

    def _permutation(self, epoch):
        if epoch not in self._epochs:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.num_samples, generator=g)
            tail = epoch * self.num_samples % self.global_batch  # the previous epoch's share of the batch across
            if epoch > 0 and tail and self.global_batch <= self.num_samples:
                perm = self._avoid(perm, self._permutation(epoch - 1)[self.num_samples - tail:], tail)
            self._epochs = {e: p for e, p in self._epochs.items() if e >= epoch - 1}  # keep two epochs
            self._epochs[epoch] = perm
        return self._epochs[epoch]

    def _avoid(self, perm, previous_tail, tail):
        """`perm` with the samples of `previous_tail` moved out of its first
        G - tail places (deterministically), so the global batch that straddles
        the two epochs holds no sample twice."""
        taken = set(previous_tail.tolist())
        order = perm.tolist()
        head = self.global_batch - tail
        later = head
        for i in range(head):
            if order[i] in taken:
                while order[later] in taken:
                    later += 1
                order[i], order[later] = order[later], order[i]
                later += 1
        return torch.tensor(order)

    def indices(self, step, rank):
        """Sample indices of `rank`'s share of step `step`'s global batch."""
        per_rank = self.global_batch // self.world_size
        start = step * self.global_batch + rank * per_rank
        out = []
        while len(out) < per_rank:
            epoch, offset = divmod(start + len(out), self.num_samples)
            take = min(per_rank - len(out), self.num_samples - offset)
            out += self._permutation(epoch)[offset:offset + take].tolist()
        return out

    def epoch_of(self, step):
        return step * self.global_batch // self.num_samples


class Corpus:
    """The training samples, the held-out samples and the stream over the former."""

    def __init__(self, seq_len, global_batch, world_size, seed, directory=FORTUNES):
        train, held = split(read_fortunes(directory))
        self.train = to_samples(train, seq_len)
        self.heldout = to_samples(held, seq_len)
        self.train_bytes, self.heldout_bytes = len(train), len(held)
        self.stream = ShardedStream(len(self.train), global_batch, world_size, seed)

    def batch(self, step, rank):
        """(inputs, targets) for `rank` at `step`: [batch, seq_len] each."""
        rows = self.train[self.stream.indices(step, rank)]
        return rows[:, :-1], rows[:, 1:]

    def heldout_shard(self, rank, world_size, limit):
        """The first `limit` held-out samples, rank r's every world_size-th one."""
        rows = self.heldout[:limit][rank::world_size]
        return rows[:, :-1], rows[:, 1:]
