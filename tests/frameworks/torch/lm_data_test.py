"""The data of examples/pytorch/train_lm.py (lm_data.py), in one process: every
epoch of the sharded stream holds every training sample exactly once (none
twice, none skipped), whatever the world size and however the global batch
falls across the epoch's end; ranks never share a sample within a step; the
order is a pure function of (seed, step, rank); the held-out split is disjoint
from the training split and fixed; and the real corpus (the `fortunes`
package) loads where it is installed.

Usage: lm_data_test.py PATH/TO/examples/pytorch
"""
import os
import sys
import tempfile

sys.path.insert(0, sys.argv[1])
import lm_data  # noqa: E402

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def stream_covers_each_epoch(num_samples, global_batch, world):
    stream = lm_data.ShardedStream(num_samples, global_batch, world, seed=7)
    epochs = 3
    steps = -(-epochs * num_samples // global_batch)
    order = []  # the global sequence, step by step, rank by rank
    for step in range(steps):
        shares = [stream.indices(step, rank) for rank in range(world)]
        taken = [i for share in shares for i in share]
        check(len(set(taken)) == len(taken) or global_batch > num_samples,
              f"N={num_samples} G={global_batch} world={world}: step {step} gives a sample to two ranks")
        check(all(len(s) == global_batch // world for s in shares), f"step {step}: unequal shares")
        order += taken
    for e in range(epochs):
        epoch = order[e * num_samples:(e + 1) * num_samples]
        check(sorted(epoch) == list(range(num_samples)),
              f"N={num_samples} G={global_batch} world={world}: epoch {e} is not every sample once "
              f"({len(set(epoch))} distinct of {len(epoch)})")
    check(order[:num_samples] != order[num_samples:2 * num_samples], "two epochs in the same order")
    again = lm_data.ShardedStream(num_samples, global_batch, world, seed=7)
    check(all(again.indices(s, r) == stream.indices(s, r) for s in (steps - 1, 0, 5) for r in range(world)),
          "the order depends on what was asked before")
    other = lm_data.ShardedStream(num_samples, global_batch, world, seed=8)
    check(other.indices(0, 0) != stream.indices(0, 0) or num_samples < 3, "the seed does not change the order")


def corpus_split():
    with tempfile.TemporaryDirectory() as d:
        fortunes = [f"fortune number {i}\n-- author {i % 7}".encode() for i in range(95)]
        with open(os.path.join(d, "b"), "wb") as f:
            f.write(b"\n%\n".join(fortunes[40:]) + b"\n%\n")
        with open(os.path.join(d, "a"), "wb") as f:
            f.write(b"\n%\n".join(fortunes[:40]) + b"\n")
        for extra in ("a.dat", "a.u8"):  # the index and the link the package ships: not text
            with open(os.path.join(d, extra), "wb") as f:
                f.write(b"\0binary")
        read = lm_data.read_fortunes(d)
        check(read == fortunes, f"read {len(read)} fortunes, expected {len(fortunes)} in file order")
        train, held = lm_data.split(read)
        held_ids = {i for i in range(95) if f"fortune number {i}\n".encode() in held + b"\n"}
        train_ids = {i for i in range(95) if f"fortune number {i}\n".encode() in train + b"\n"}
        check(held_ids == {i for i in range(95) if i % 10 == 9}, f"held out: {sorted(held_ids)}")
        check(train_ids | held_ids == set(range(95)) and not train_ids & held_ids, "the split is not a partition")
        corpus = lm_data.Corpus(16, 4, 2, seed=1, directory=d)
        x, y = corpus.batch(3, 1)
        check(x.shape == (2, 16) and y.shape == (2, 16), f"batch shapes {tuple(x.shape)} {tuple(y.shape)}")
        check(bool((x[:, 1:] == y[:, :-1]).all()), "targets are not the inputs shifted by one byte")


def real_corpus():
    if not os.path.isdir(lm_data.FORTUNES):
        print(f"note: {lm_data.FORTUNES} absent (package fortunes); the real corpus is not checked")
        return
    corpus = lm_data.Corpus(128, 4, 4, seed=1234)
    print(f"fortunes: {len(corpus.train)} training and {len(corpus.heldout)} held-out samples of 128 bytes")
    check(len(corpus.train) > 10000 and len(corpus.heldout) > 1000, "the fortunes corpus is unexpectedly small")


def main():
    for n, g, w in [(37, 6, 1), (37, 6, 2), (37, 6, 3), (40, 8, 4), (5, 8, 2), (1000, 64, 4)]:
        stream_covers_each_epoch(n, g, w)
    try:
        lm_data.ShardedStream(10, 5, 2, seed=1)
        failures.append("a global batch that the world size does not divide was accepted")
    except ValueError:
        pass
    corpus_split()
    real_corpus()
    for f in failures:
        print("FAILED:", f)
    print("PASSED" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
