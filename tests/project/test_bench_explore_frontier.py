"""bench/explore_frontier.py's allocation: probes go where the LM expects them to buy the most
new-interest hits per NDCG lost, each user's probes in order."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from explore_frontier import allocate  # noqa: E402


# expected NDCG and expected new-interest hits per user at 0, 1, 2 probes, by hand:
#   user 0: probe 1 buys 0.02 hits for 0.01 NDCG (ratio 2), probe 2 buys 0.01 for 0.01 (1)
#   user 1: probe 1 buys 0.03 for 0.01 (3), probe 2 buys 0.005 for 0.01 (0.5)
#   user 2: probe 1 buys 0.01 for 0.02 (0.5), probe 2 buys 0.04 for 0.01 (4): taken with probe 1,
#           both at ratio 0.5 (a user's probes are taken in order)
E_NDCG = np.array([[0.10, 0.09, 0.08], [0.10, 0.09, 0.08], [0.10, 0.08, 0.07]])
E_NEW = np.array([[0.00, 0.02, 0.03], [0.00, 0.03, 0.035], [0.00, 0.01, 0.05]])


def test_probes_go_best_ratio_first():
    assert allocate(E_NDCG, E_NEW, 0).tolist() == [0, 0, 0]
    assert allocate(E_NDCG, E_NEW, 1).tolist() == [0, 1, 0]
    assert allocate(E_NDCG, E_NEW, 2).tolist() == [1, 1, 0]
    assert allocate(E_NDCG, E_NEW, 3).tolist() == [2, 1, 0]


def test_a_users_probes_are_taken_in_order():
    # user 2's second probe (ratio 4) never comes before its first (ratio 0.5)
    for budget in range(7):
        level = allocate(E_NDCG, E_NEW, budget)
        assert level.sum() == min(budget, 6)
    # ties at ratio 0.5 go in user order: user 1's second probe, then user 2's first, then its second
    assert allocate(E_NDCG, E_NEW, 4).tolist() == [2, 2, 0]
    assert allocate(E_NDCG, E_NEW, 5).tolist() == [2, 2, 1]
    assert allocate(E_NDCG, E_NEW, 6).tolist() == [2, 2, 2]
