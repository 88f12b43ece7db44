"""lm_explore: the language model's exploit list with a share of its slots (per RFM segment of
the purpose, var rerank.explore_shares) given to candidates that are a new interest for the
user (recs.lm_candidate_interests, the rule eval's new_interest_hit_rate uses), chosen by the
model's uncertainty (recs.lm_candidate_uncertainty: MC-dropout mean and spread), then UCB
or a Thompson draw (var rerank.explore_rule), divided by the item's popularity (features.item_popularity)
to the power var rerank.explore_novelty_weight (long tail), items other lists already probe
(or, with explore_repeat_shown, show) pushed down (explore_repeat_penalty), probes drawn at
explore_temperature. Seeded by var seed:
the same build gives the same lists. probed_interest names the genre each exploration slot
probes, propensity the probability with which the policy chose the slot's item."""
from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    seed = int(dbt.var("seed", 42))
    items = dbt.ref("items").pl()
    histories = rerank.purpose_histories(dbt.ref("fit_events").pl())
    candidates = rerank.Candidates.from_frame(dbt.ref("lm_candidates").pl(), histories)
    mean, std = rerank.uncertainty_of(candidates, dbt.ref("lm_candidate_uncertainty").pl())
    outside, probes = rerank.interest_flags_of(candidates, dbt.ref("lm_candidate_interests").pl())
    slots = rerank.slots_per_group(
        candidates.groups, dbt.ref("user_rfm_by_purpose").pl(), settings.explore_shares, lengths,
        settings.explore_default_share,
    )
    popularity = rerank.popularity_of(candidates, dbt.ref("item_popularity").pl())
    lists = rerank.explore_lists(candidates, mean, std, outside, probes, slots, lengths, seed=seed,
                                 popularity=popularity, **settings.explore_options())
    dbt.log(f"lm_explore: {candidates.groups.height} lists (lengths {lengths}), "
            f"{int(lists['is_exploration'].sum())} exploration slots ({settings.explore_rule})")
    return rerank.like_reasons(lists, histories, dbt.ref("item_embeddings").pl(), items)
