"""Memory-bank policies on synthetic features: size, IoU gate, eviction order, centrality."""

import pytest
import torch

from napari_textseg.engine.interactive.memory import (
    MemoryBank,
    MemoryEntry,
    centrality_order,
    centrality_scores,
)


def _entry(index, signature, iou=0.9):
    return MemoryEntry(
        index=index,
        output={"maskmem_features": torch.tensor(signature)},
        iou=iou,
        signature=torch.tensor(signature, dtype=torch.float32),
    )


def test_fifo_keeps_the_most_recent():
    bank = MemoryBank(size=3, policy="fifo")
    for i in range(5):
        assert bank.add(_entry(i, [1.0, float(i)], iou=0.1))  # FIFO ignores the IoU
    assert [e.index for e in bank.entries] == [2, 3, 4]


def test_ranked_gate_discards_low_iou():
    bank = MemoryBank(size=3, policy="ranked")
    assert not bank.add(_entry(0, [1.0, 0.0], iou=0.59))
    assert bank.add(_entry(1, [1.0, 0.0], iou=0.6))
    assert [e.index for e in bank.entries] == [1]


def test_ranked_evicts_the_least_central_memory():
    bank = MemoryBank(size=3, policy="ranked")
    bank.add(_entry(0, [1.0, 0.0]))
    bank.add(_entry(1, [0.0, 1.0]))  # the outlier
    bank.add(_entry(2, [1.0, 0.1]))
    assert bank.add(_entry(3, [1.0, 0.05]))
    assert [e.index for e in bank.entries] == [0, 2, 3]


def test_ranked_refuses_a_new_outlier():
    bank = MemoryBank(size=2, policy="ranked")
    bank.add(_entry(0, [1.0, 0.0]))
    bank.add(_entry(1, [1.0, 0.1]))
    assert not bank.add(_entry(2, [-1.0, 0.0]))
    assert [e.index for e in bank.entries] == [0, 1]


def test_centrality_matches_its_definition():
    signatures = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.2]])
    unit = torch.nn.functional.normalize(signatures, dim=1)
    expected = [sum(float(unit[i] @ unit[j]) for j in range(4) if j != i) for i in range(4)]
    torch.testing.assert_close(centrality_scores(signatures), torch.tensor(expected))
    assert centrality_order(signatures)[0] == 1  # the diagonal vector is the most typical
    assert centrality_order(signatures)[-1] == 2


def test_offload_moves_memories_to_host():
    bank = MemoryBank(size=2, policy="fifo", offload=True)
    bank.add(_entry(0, [1.0, 0.0]))
    assert bank.entries[0].output["maskmem_features"].device.type == "cpu"


@pytest.mark.parametrize("size, policy", [(0, "fifo"), (3, "lifo")])
def test_bad_settings(size, policy):
    with pytest.raises(ValueError):
        MemoryBank(size=size, policy=policy)
