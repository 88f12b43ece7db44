"""The re-rankers' settings, read from the project's ``rerank`` var."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..settings import settings_values
from .batching import _check_lambda
from .exploration import ExploreRule, Placement


@dataclass(frozen=True)
class RerankSettings:
    """The re-rankers' settings, from the project's ``rerank`` var (unknown keys are an error).

    ``explore_shares`` maps an RFM segment to the share of a list's slots that explores;
    segments not listed (and users without a segment) get ``explore_default_share``.
    """

    mmr_lambda: float = 0.7
    calibration_lambda: float = 0.5
    explore_shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "New": 0.3,
            "Promising": 0.3,
            "Potential loyalists": 0.2,
            "Need attention": 0.2,
            "Hibernating": 0.2,
            "Lost": 0.2,
            "Loyal": 0.1,
            "Champions": 0.1,
            "At risk": 0.1,
            "Cannot lose them": 0.1,
        }
    )
    explore_default_share: float = 0.2
    explore_rule: ExploreRule = "ucb"
    explore_beta: float = 1.0
    explore_placement: Placement = "spread"
    explore_distinct_interests: bool = True
    explore_repeat_penalty: float = 0.0
    explore_repeat_shown: bool = False
    explore_novelty_weight: float = 0.0
    explore_temperature: float = 0.0
    explore_candidates: int = 100
    tradeoff_k: int = 10
    tradeoff_mmr_lambdas: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3)
    tradeoff_calibration_lambdas: tuple[float, ...] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 0.95)
    tradeoff_explore_shares: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)

    def explore_options(self) -> dict:
        """The keyword arguments of :func:`explore_lists` these settings fix (the served lists
        and eval.tradeoff_lists pass the same ones)."""
        return {
            "rule": self.explore_rule, "beta": self.explore_beta, "placement": self.explore_placement,
            "distinct_interests": self.explore_distinct_interests, "repeat_penalty": self.explore_repeat_penalty,
            "repeat_shown": self.explore_repeat_shown,
            "novelty_weight": self.explore_novelty_weight, "temperature": self.explore_temperature,
        }

    @classmethod
    def from_vars(cls, values: Mapping | None) -> RerankSettings:
        values = settings_values(cls, values, "rerank",
                                 ("tradeoff_mmr_lambdas", "tradeoff_calibration_lambdas", "tradeoff_explore_shares"))
        if "explore_shares" in values:
            values["explore_shares"] = {str(s): float(v) for s, v in dict(values["explore_shares"]).items()}
        settings = cls(**values)
        _check_lambda("rerank.mmr_lambda", settings.mmr_lambda)
        _check_lambda("rerank.calibration_lambda", settings.calibration_lambda)
        if settings.explore_rule not in ("ucb", "thompson"):
            raise ValueError(f"rerank.explore_rule: expected 'ucb' or 'thompson', found {settings.explore_rule!r}")
        for key in ("explore_repeat_penalty", "explore_novelty_weight", "explore_temperature"):
            if not getattr(settings, key) >= 0:
                raise ValueError(f"rerank.{key}: expected a number >= 0, found {getattr(settings, key)!r}")
        if settings.explore_placement not in ("spread", "tail"):
            raise ValueError(
                f"rerank.explore_placement: expected 'spread' or 'tail', found {settings.explore_placement!r}"
            )
        return settings
