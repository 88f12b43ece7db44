"""lm_mmr: the language model's candidates re-ranked by maximal marginal relevance
(Carbonell and Goldstein, 1998) over the LM's item embeddings, lambda = var rerank.mmr_lambda.
Exploit slots only; reasons name the closest history item."""
from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    k = max(dbt.var("ks", [10]))
    histories = rerank.purpose_histories(dbt.ref("fit_events").pl())
    candidates = rerank.Candidates.from_frame(dbt.ref("lm_candidates").pl(), histories)
    embeddings = dbt.ref("item_embeddings").pl()
    vectors = rerank.embedding_matrix(candidates.item_ids(), embeddings)
    lists = rerank.mmr_lists(candidates, vectors, k, settings.mmr_lambda)
    dbt.log(f"lm_mmr: {candidates.groups.height} lists of up to {k} at lambda {settings.mmr_lambda}")
    return rerank.like_reasons(lists, histories, embeddings, dbt.ref("items").pl())
