"""The LM's uncertainty about each of its candidates: the mean and spread of the mixed
next-item probability over var lm.mc_passes stochastic forward passes with dropout on
(MC dropout, duckrec.ml.score.score_candidates_mc), seeded by var seed. Computed once
here; lm_explore_lists and eval.tradeoff_lists read it."""
from duckrec.ml import rerank
from duckrec.ml.score import TrainedLM


def model(dbt, session):
    dbt.config(materialized="table")
    seed = int(dbt.var("seed", 42))
    passes = int((dbt.var("lm", {}) or {}).get("mc_passes", 20))
    histories = rerank.purpose_histories(dbt.ref("fit_events").pl())
    # every row of lm_candidates (it already leaves history items out)
    candidates = rerank.Candidates.from_frame(dbt.ref("lm_candidates").pl())
    latest = dbt.ref("lm_checkpoints").order("trained_at desc, checkpoint_id desc").limit(1).project("state").fetchall()
    if not latest:
        raise ValueError("lm_candidate_uncertainty: expected a trained model in ml.lm_checkpoints, found none")
    lm = TrainedLM.from_bytes(bytes(latest[0][0]))
    mean, std = rerank.candidate_uncertainty(lm, candidates, histories, passes, seed,
                                             progress=dbt.progress)
    dbt.log(f"lm_candidate_uncertainty: {candidates.frame.height} candidates of {candidates.groups.height} "
            f"lists, {passes} MC-dropout passes, median spread/mean {_median_ratio(mean, std):.2f}")
    return rerank.uncertainty_frame(candidates, mean, std)


def _median_ratio(mean, std):
    import numpy as np

    ok = mean > 0
    return float(np.median(std[ok] / mean[ok])) if ok.any() else 0.0
