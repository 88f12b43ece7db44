"""The off-policy estimator (macro off_policy_estimate, sql/macros/off_policy.sql) on a
hand-computed example, in a tiny project that uses the repository's macro file.

Logs: user 1 was served item 10 (propensity 1) and item 11 (0.5); user 2 item 20 (1) and
item 21 (0.25). Later events: (1, 11), (2, 21), (2, 22).
Target 'a' serves 1: [10, 11], 2: [20, 22]: weighted rewards 1: 1/0.5 * 1 = 2, 2: 0 (item 22
was never logged: no support), 4 target slots, weights 1 + 2 + 1 = 4
    ips = 2 / 4 = 0.5, snips = 2 / 4 = 0.5
Target 'b' serves 1: [11], 2: [21]: weighted rewards 2 and 4, 2 slots, weights 2 + 4
    ips = 6 / 2 = 3.0, snips = 6 / 6 = 1.0
Both: per-user sums with sample standard deviation sqrt(2), so the interval is
sum -/+ 1.96 * sqrt(2) * sqrt(2) = sum -/+ 3.92, over the slots.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine_fixtures import project, query, run, warehouse

MACRO = (Path(__file__).resolve().parents[2] / "sql" / "macros" / "off_policy.sql").read_text(encoding="utf-8")

MODEL = """
with logged as (
    select * from (values (1, 10, 1.0), (1, 11, 0.5), (2, 20, 1.0), (2, 21, 0.25)) t(user_id, item_id, propensity)
),
target as (
    select * from (values ('a', 1, 10), ('a', 1, 11), ('a', 2, 20), ('a', 2, 22), ('b', 1, 11), ('b', 2, 21))
        t(strategy, user_id, item_id)
),
outcomes as (
    select * from (values (1, 11), (2, 21), (2, 22)) t(user_id, item_id)
),
estimates as (
    {{ off_policy_estimate('logged', 'target', 'outcomes', ['strategy']) }}
)
select * from estimates
"""


def test_ips_and_snips_on_a_hand_computed_log(tmp_path, capsys):
    root = project(tmp_path, {"sql/macros/off_policy.sql": MACRO, "sql/estimates.sql": MODEL})
    result = run(capsys, root, "build")
    assert result.code == 0, result
    got = query(warehouse(root), "select strategy, n_users, n_target_slots, ips, snips, ips_low, ips_high "
                                 "from estimates order by strategy")
    assert [row[:3] for row in got] == [("a", 2, 4), ("b", 2, 2)]
    a, b = got
    assert a[3:] == pytest.approx((0.5, 0.5, (2 - 3.92) / 4, (2 + 3.92) / 4))
    assert b[3:] == pytest.approx((3.0, 1.0, (6 - 3.92) / 2, (6 + 3.92) / 2))
