"""The re-rankers' settings, read from the project's ``rerank`` var."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..settings import settings_values
from .batching import _check_lambda
from .exploration import ExploreRule, Placement


@dataclass(frozen=True)
class Promise:
    """What a re-ranker may cost, chosen on validation per build (duckrec.ml.rerank.choice):
    at most ``max_ndcg_loss`` of the exploit list's NDCG@K; exploration may also state a
    coverage target (``min_coverage_ratio`` x lm), which is reported when no setting within
    the promise reaches it, never bought with more NDCG. ``share_scales`` x the served shares
    and ``novelty_weights`` are exploration's search grid."""

    max_ndcg_loss: float = 0.05
    min_coverage_ratio: float | None = None
    share_scales: tuple[float, ...] = (0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0)
    novelty_weights: tuple[float, ...] = (1.0, 3.0)

    @classmethod
    def from_vars(cls, values: Mapping | None, var: str) -> Promise:
        promise = cls(**settings_values(cls, values, var, ("share_scales", "novelty_weights")))
        if not 0 <= promise.max_ndcg_loss < 1:
            raise ValueError(f"{var}.max_ndcg_loss: expected a number in [0, 1), found {promise.max_ndcg_loss!r}")
        if promise.min_coverage_ratio is not None and not promise.min_coverage_ratio > 0:
            raise ValueError(f"{var}.min_coverage_ratio: expected a number > 0, found {promise.min_coverage_ratio!r}")
        if not promise.share_scales or min(promise.share_scales) < 0:
            raise ValueError(f"{var}.share_scales: expected a list of numbers >= 0, found {list(promise.share_scales)}")
        if not promise.novelty_weights or min(promise.novelty_weights) < 0:
            raise ValueError(f"{var}.novelty_weights: expected a list of numbers >= 0, found "
                             f"{list(promise.novelty_weights)}")
        return promise


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
    # eval.tradeoff_lists rebuilds the holdout lists of every setting for at most this many
    # holdout users (a seeded sample): the curve's cost stays bounded on a big log
    tradeoff_users: int = 5000
    # each re-ranker's setting chosen on validation per build (eval.explore_choice); false:
    # the hand-set settings above serve as they are
    choose_on_validation: bool = True
    choice_users: int = 2000
    # the one-sided confidence that a chosen setting's validation NDCG ratio is within its
    # promise (0.84: one standard error, the one-standard-error rule)
    promise_confidence: float = 0.84
    explore: Promise = field(default_factory=Promise)
    mmr: Promise = field(default_factory=Promise)
    calibration: Promise = field(default_factory=Promise)

    def replace(self, **values) -> RerankSettings:
        return replace(self, **values)

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
        for key in ("explore", "mmr", "calibration"):
            if key in values:
                values[key] = Promise.from_vars(values[key], f"rerank.{key}")
        settings = cls(**values)
        _check_lambda("rerank.mmr_lambda", settings.mmr_lambda)
        _check_lambda("rerank.calibration_lambda", settings.calibration_lambda)
        if settings.explore_rule not in ("ucb", "thompson"):
            raise ValueError(f"rerank.explore_rule: expected 'ucb' or 'thompson', found {settings.explore_rule!r}")
        for key in ("explore_repeat_penalty", "explore_novelty_weight", "explore_temperature"):
            if not getattr(settings, key) >= 0:
                raise ValueError(f"rerank.{key}: expected a number >= 0, found {getattr(settings, key)!r}")
        if not 0.5 <= settings.promise_confidence < 1:
            raise ValueError(f"rerank.promise_confidence: expected a number in [0.5, 1), found "
                             f"{settings.promise_confidence!r}")
        if settings.tradeoff_users < 1:
            raise ValueError(f"rerank.tradeoff_users: expected an integer >= 1, found {settings.tradeoff_users!r}")
        if settings.choice_users < 1:
            raise ValueError(f"rerank.choice_users: expected an integer >= 1, found {settings.choice_users!r}")
        if settings.explore_placement not in ("spread", "tail"):
            raise ValueError(
                f"rerank.explore_placement: expected 'spread' or 'tail', found {settings.explore_placement!r}"
            )
        return settings
