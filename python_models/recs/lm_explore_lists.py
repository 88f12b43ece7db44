"""lm_explore: the language model's exploit list with a share of its slots (per RFM segment of
the purpose: var rerank.explore_shares times the scale eval.explore_choice chose on
validation, with its novelty weight) given to candidates that are a new interest for the
user (recs.lm_candidate_interests, the rule eval's new_interest_hit_rate uses), chosen by the
model's uncertainty (recs.lm_candidate_uncertainty: MC-dropout mean and spread), then UCB
or a Thompson draw (var rerank.explore_rule), divided by the item's popularity (features.item_popularity)
to the power var rerank.explore_novelty_weight (long tail), items other lists already probe
(or, with explore_repeat_shown, show) pushed down (explore_repeat_penalty), probes drawn at
explore_temperature. Seeded by var seed:
the same build gives the same lists. probed_interest names the genre each exploration slot
probes, propensity the probability with which the policy chose the slot's item.
Built a block of users at a time (duckrec.ml.rerank.blocks), the repeat counts carried
from block to block: the same lists as one pass over all users."""
import polars as pl

from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    # the settings chosen on this build's validation split (eval.explore_choice), or the hand-set ones
    settings = rerank.chosen_settings(rerank.RerankSettings.from_vars(dbt.var("rerank", {})),
                                      dbt.ref("explore_choice").pl())
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    seed = int(dbt.var("seed", 42))
    items = dbt.ref("items").pl()
    vectors = rerank.reason_vectors(dbt.ref("item_embeddings").pl())
    segments = dbt.ref("user_rfm_by_purpose").pl()
    item_popularity = dbt.ref("item_popularity").pl()
    candidates, fit_events = dbt.ref("lm_candidates"), dbt.ref("fit_events").project("purpose, user_id, item_id, position")
    uncertainty, interests = dbt.ref("lm_candidate_uncertainty"), dbt.ref("lm_candidate_interests")
    blocks = rerank.user_blocks(candidates.aggregate("purpose, user_id, count(*) as rows", "purpose, user_id").pl())
    # the slots of every user at once (a share's extra slot goes to the lists that lose least,
    # over all users, not per block); the first max(lengths) candidates decide them
    slots_by_user = rerank.slots_by_user(
        rerank.Candidates.from_frame(candidates.filter(f"rank <= {max(lengths.values())}").pl()), segments,
        settings.explore_shares, lengths, settings.explore_default_share, seed=seed)

    def read(block):
        histories = rerank.purpose_histories(fit_events.filter(block.where()).pl())
        table = rerank.Candidates.from_frame(candidates.filter(block.where()).pl(), histories)
        slots = rerank.slots_of(table.groups, slots_by_user)
        return histories, table, slots

    # the items every list's exploit slots show, counted over all blocks before any probe
    counts = {}
    if settings.explore_repeat_shown and settings.explore_repeat_penalty > 0:
        for block in blocks:
            _, table, slots = read(block)
            rerank.exposure_counts(table, slots, lengths, counts)
    yield pl.DataFrame(schema=rerank.EXPLORE_LIST_SCHEMA)
    lists_made = slots_made = 0
    for block in blocks:
        histories, table, slots = read(block)
        outside, probes = rerank.interest_flags_of(table, interests.filter(block.where()).pl())
        mean, std = rerank.uncertainty_of(table, uncertainty.filter(block.where()).pl(), needed=outside)
        popularity = rerank.popularity_of(table, item_popularity)
        lists = rerank.explore_lists(table, mean, std, outside, probes, slots, lengths, seed=seed,
                                     popularity=popularity, probe_counts=counts, **settings.explore_options())
        lists_made += table.groups.height
        slots_made += int(lists["is_exploration"].sum())
        yield rerank.like_reasons(lists, histories, vectors, items)
    dbt.log(f"lm_explore: {lists_made} lists (lengths {lengths}) in {len(blocks)} blocks, "
            f"{slots_made} exploration slots ({settings.explore_rule})")
