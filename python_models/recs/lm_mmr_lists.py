"""lm_mmr: the language model's candidates re-ranked by maximal marginal relevance
(Carbonell and Goldstein, 1998) over the LM's item embeddings, lambda = var rerank.mmr_lambda.
Exploit slots only; reasons name the closest history item."""
from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    k = max(lengths.values())
    histories = rerank.purpose_histories(dbt.ref("fit_events").pl())
    candidates = rerank.Candidates.from_frame(dbt.ref("lm_candidates").pl(), histories)
    embeddings = dbt.ref("item_embeddings").pl()
    vectors = rerank.embedding_matrix(candidates.item_ids(), embeddings)
    # MMR is greedy: a list cut at a purpose's length is the list built at that length
    lists = rerank.cut_lists(rerank.mmr_lists(candidates, vectors, k, settings.mmr_lambda), lengths)
    dbt.log(f"lm_mmr: {candidates.groups.height} lists (lengths {lengths}) at lambda {settings.mmr_lambda}")
    return rerank.like_reasons(lists, histories, embeddings, dbt.ref("items").pl())
