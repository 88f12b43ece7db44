"""lm_calibrated: the language model's candidates re-ranked so each list's genre mix follows
the user's history mix (Steck, RecSys 2018), lambda chosen on validation per build
(eval.explore_choice; var rerank.calibration_lambda when rerank.choose_on_validation is false).
Exploit slots only; reasons name the closest history item. Built a block of users at a
time (duckrec.ml.rerank.blocks)."""
import polars as pl

from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    # the settings chosen on this build's validation split (eval.explore_choice), or the hand-set ones
    settings = rerank.chosen_settings(rerank.RerankSettings.from_vars(dbt.var("rerank", {})),
                                      dbt.ref("explore_choice").pl())
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    k = max(lengths.values())
    max_rank = int((dbt.var("lm", {}) or {}).get("candidates", 100))
    items = dbt.ref("items").pl()
    # the catalogue's interests (features.item_interests): genres, or clusters without labels
    interests = dbt.ref("item_interests").pl().select("item_id", pl.col("interests").alias("genres"))
    vectors = rerank.reason_vectors(dbt.ref("item_embeddings").pl())
    candidates = dbt.ref("lm_candidates").filter(f"rank <= {max_rank}")
    fit_events = dbt.ref("fit_events").project("purpose, user_id, item_id, position")
    blocks = rerank.user_blocks(candidates.aggregate("purpose, user_id, count(*) as rows", "purpose, user_id").pl())
    yield pl.DataFrame(schema=rerank.LIST_SCHEMA)
    lists_made = 0
    for block in blocks:
        histories = rerank.purpose_histories(fit_events.filter(block.where()).pl())
        table = rerank.Candidates.from_frame(candidates.filter(block.where()).pl(), histories, max_rank=max_rank)
        item_genres, _ = rerank.genre_matrix(table.item_ids(), interests)
        target_mixes = rerank.history_genre_mix(table.groups, histories, interests)
        # the greedy calibration: a list cut at a purpose's length is the list built at that length
        lists = rerank.cut_lists(
            rerank.calibrated_lists(table, item_genres, target_mixes, k, settings.calibration_lambda), lengths
        )
        lists_made += table.groups.height
        yield rerank.like_reasons(lists, histories, vectors, items)
    dbt.log(f"lm_calibrated: {lists_made} lists (lengths {lengths}) at lambda {settings.calibration_lambda}")
