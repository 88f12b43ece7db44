"""lm_calibrated: the language model's candidates re-ranked so each list's genre mix follows
the user's history mix (Steck, RecSys 2018), lambda = var rerank.calibration_lambda.
Exploit slots only; reasons name the closest history item."""
from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    k = max(lengths.values())
    items = dbt.ref("items").pl()
    histories = rerank.purpose_histories(dbt.ref("fit_events").pl())
    candidates = rerank.Candidates.from_frame(dbt.ref("lm_candidates").pl(), histories)
    item_genres, _ = rerank.genre_matrix(candidates.item_ids(), items)
    target_mixes = rerank.history_genre_mix(candidates.groups, histories, items)
    # the greedy calibration: a list cut at a purpose's length is the list built at that length
    lists = rerank.cut_lists(
        rerank.calibrated_lists(candidates, item_genres, target_mixes, k, settings.calibration_lambda), lengths
    )
    dbt.log(f"lm_calibrated: {candidates.groups.height} lists (lengths {lengths}) at lambda {settings.calibration_lambda}")
    return rerank.like_reasons(lists, histories, dbt.ref("item_embeddings").pl(), items)
