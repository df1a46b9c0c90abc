import random
import time

import pytest
import torch

from mmgraph.errors import ConfigError, DataError
from mmgraph.zeroshot.neighbors import STRATEGIES, select_neighbors


def random_graph(n=40, e=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    loops = torch.arange(0, n, 7).repeat(2, 1)                   # some self loops
    return torch.cat([ei, ei[:, :20], ei[:, :10].flip(0), loops], dim=1)   # and duplicates


def reference_neighbors(ei, n):
    nb = {i: set() for i in range(n)}
    for s, d in ei.t().tolist():
        if s != d:
            nb[s].add(d)
            nb[d].add(s)
    return nb


def test_neighbour_sets_are_undirected_without_loops_or_duplicates():
    ei = torch.tensor([[0, 0, 1, 2, 3, 3, 0, 4], [1, 1, 0, 0, 3, 4, 1, 4]])
    got = select_neighbors(ei, 6, [0, 1, 2, 3, 4, 5], 10, "degree")
    assert [sorted(x) for x in got] == [[1, 2], [0], [0], [4], [3], []]


def test_all_strategies_match_a_brute_force_reference():
    n = 40
    ei = random_graph(n)
    nb = reference_neighbors(ei, n)
    deg = {i: len(v) for i, v in nb.items()}
    feats = torch.randn(n, 8, generator=torch.Generator().manual_seed(1))
    feats[5] = feats[3]                                          # exact similarity ties
    unit = torch.nn.functional.normalize(feats, dim=1)
    nodes = list(range(n))
    for k in (1, 3, 100):
        by_degree = select_neighbors(ei, n, nodes, k, "degree")
        similar = select_neighbors(ei, n, nodes, k, "similar", features=feats)
        rand = select_neighbors(ei, n, nodes, k, "random", seed=3)
        for i in nodes:
            want_deg = sorted(nb[i], key=lambda j: (-deg[j], j))[:k]
            assert by_degree[i] == want_deg
            cos = {j: float(unit[i] @ unit[j]) for j in nb[i]}
            want_sim = sorted(nb[i], key=lambda j: (-cos[j], j))[:k]
            assert [cos[j] for j in similar[i]] == pytest.approx([cos[j] for j in want_sim], abs=1e-6)
            assert set(similar[i]) <= nb[i] and len(similar[i]) == len(want_sim)
            assert set(rand[i]) <= nb[i] and len(set(rand[i])) == len(rand[i]) == min(k, len(nb[i]))
        if k == 100:                                             # k beyond every degree: all neighbours
            assert [set(x) for x in rand] == [nb[i] for i in nodes]


def test_similarity_ties_go_to_the_lower_id():
    ei = torch.tensor([[0, 0, 0], [3, 1, 2]])
    feats = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.5, 0.5]])
    assert select_neighbors(ei, 4, [0], 1, "similar", features=feats) == [[1]]
    assert select_neighbors(ei, 4, [0], 3, "similar", features=feats) == [[1, 3, 2]]


def test_random_choice_depends_only_on_seed_node_and_k():
    n = 40
    ei = random_graph(n)
    nodes = list(range(n))
    full = select_neighbors(ei, n, nodes, 3, "random", seed=7)
    shuffled = nodes[:]
    random.Random(0).shuffle(shuffled)
    subset = shuffled[:9] + shuffled[:2]                         # other order, repeats
    part = select_neighbors(ei, n, torch.tensor(subset), 3, "random", seed=7)
    assert part == [full[i] for i in subset]
    assert select_neighbors(ei, n, nodes, 3, "random", seed=7) == full
    other = select_neighbors(ei, n, nodes, 3, "random", seed=8)
    assert other != full and all(set(a) <= set(reference_neighbors(ei, n)[i]) for i, a in enumerate(other))
    # The sample for k is a prefix of the one for k + 1.
    bigger = select_neighbors(ei, n, nodes, 4, "random", seed=7)
    assert all(b[:len(a)] == a for a, b in zip(full, bigger))


def test_random_sample_is_roughly_uniform():
    ei = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 4]])
    counts = {j: 0 for j in range(1, 5)}
    for seed in range(400):
        for j in select_neighbors(ei, 5, [0], 2, "random", seed=seed)[0]:
            counts[j] += 1
    assert all(0.38 < c / 400 < 0.62 for c in counts.values()), counts   # expected 0.5 each


def test_k_zero_isolated_nodes_and_no_nodes():
    ei = torch.tensor([[0, 1], [1, 2]])
    for strategy in ("random", "degree"):
        assert select_neighbors(ei, 4, [0, 1, 3], 0, strategy) == [[], [], []]
        assert select_neighbors(ei, 4, [3], 2, strategy) == [[]]
        assert select_neighbors(ei, 4, [], 2, strategy) == []
    empty = torch.empty(2, 0, dtype=torch.long)
    assert select_neighbors(empty, 3, [0, 2], 2, "similar", features=torch.ones(3, 2)) == [[], []]


def test_bad_input_is_a_one_line_error():
    ei = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ConfigError, match="unknown neighbour strategy 'nearest'; valid strategies: "
                                          "random, similar, degree") as err:
        select_neighbors(ei, 3, [0], 2, "nearest")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r">= 0.*random, similar, degree"):
        select_neighbors(ei, 3, [0], -1)
    for bad_k in ("two", 1.5, True):
        with pytest.raises(ConfigError, match="integer >= 0"):
            select_neighbors(ei, 3, [0], bad_k)
    with pytest.raises(ConfigError, match="needs node features"):
        select_neighbors(ei, 3, [0], 2, "similar")
    with pytest.raises(DataError, match="features must be"):
        select_neighbors(ei, 3, [0], 2, "similar", features=torch.ones(2, 4))
    with pytest.raises(DataError, match="node id 3 is out of range"):
        select_neighbors(ei, 3, [0, 3], 2)
    with pytest.raises(DataError, match="edge_index refers to node 5"):
        select_neighbors(torch.tensor([[0], [5]]), 3, [0], 2)
    with pytest.raises(DataError, match=r"\[2, E\]"):
        select_neighbors(torch.tensor([0, 1, 2]), 3, [0], 2)
    assert set(STRATEGIES) == {"random", "similar", "degree"}


def test_large_graph_is_fast():
    n, e = 100_000, 1_000_000
    ei = torch.randint(0, n, (2, e), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    got = select_neighbors(ei, n, torch.arange(n), 5, "random", seed=0)
    elapsed = time.perf_counter() - start
    assert len(got) == n and all(len(x) <= 5 for x in got)
    # Spot-check a few nodes against the edges themselves.
    for i in (0, 12345, 99999):
        nb = set(ei[1][ei[0] == i].tolist()) | set(ei[0][ei[1] == i].tolist())
        nb.discard(i)
        assert set(got[i]) <= nb and len(got[i]) == min(5, len(nb))
    assert elapsed < 15, f"{elapsed:.1f} s for 100k nodes / 1M edges"
