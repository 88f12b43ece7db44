"""lm_mmr: the language model's candidates re-ranked by maximal marginal relevance
(Carbonell and Goldstein, 1998) over the LM's item embeddings, lambda chosen on validation
per build (eval.explore_choice; var rerank.mmr_lambda when rerank.choose_on_validation is false).
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
    embeddings = dbt.ref("item_embeddings").pl()
    vectors = rerank.reason_vectors(embeddings)
    candidates = dbt.ref("lm_candidates").filter(f"rank <= {max_rank}")
    fit_events = dbt.ref("fit_events").project("purpose, user_id, item_id, position")
    blocks = rerank.user_blocks(candidates.aggregate("purpose, user_id, count(*) as rows", "purpose, user_id").pl())
    yield pl.DataFrame(schema=rerank.LIST_SCHEMA)
    lists_made = 0
    for block in blocks:
        histories = rerank.purpose_histories(fit_events.filter(block.where()).pl())
        table = rerank.Candidates.from_frame(candidates.filter(block.where()).pl(), histories, max_rank=max_rank)
        # MMR is greedy: a list cut at a purpose's length is the list built at that length
        lists = rerank.cut_lists(rerank.mmr_lists(table, rerank.embedding_matrix(table.item_ids(), embeddings), k,
                                                  settings.mmr_lambda), lengths)
        lists_made += table.groups.height
        yield rerank.like_reasons(lists, histories, vectors, items)
    dbt.log(f"lm_mmr: {lists_made} lists (lengths {lengths}) at lambda {settings.mmr_lambda}")
