"""The LM's uncertainty about each of its candidates a list can probe (those that open a new
interest for the user, recs.lm_candidate_interests): the mean and spread of the mixed
next-item probability over var lm.mc_passes stochastic forward passes with dropout on
(MC dropout, duckrec.ml.score.score_candidates_mc), seeded by var seed. Computed once
here; lm_explore_lists and eval.tradeoff_lists read it. Written a block of users at a
time (duckrec.ml.rerank.blocks): the pool is users x var rerank.explore_candidates rows."""
from itertools import zip_longest

import numpy as np

from duckrec.ml import rerank
from duckrec.ml.score import latest_checkpoint


def model(dbt, session):
    dbt.config(materialized="table")
    seed = int(dbt.var("seed", 42))
    passes = int((dbt.var("lm", {}) or {}).get("mc_passes", 20))
    lm = latest_checkpoint(dbt.ref("lm_checkpoints"))
    all_candidates = dbt.ref("lm_candidates")
    # only the rows a list reads: exploration's probes come from the candidates that open a new
    # interest (recs.lm_candidate_interests); exploit slots keep the LM's score order and never
    # read the uncertainty, so the rest of the pool is not scored
    candidates = all_candidates.join(
        dbt.ref("lm_candidate_interests").filter("is_new_interest").project("purpose, user_id, item_id"),
        "purpose, user_id, item_id", how="semi")
    fit_events = dbt.ref("fit_events").project("purpose, user_id, item_id, position")
    # two purposes' blocks are scored at once: a purpose larger than one block goes in half
    # blocks; one that fits (the default seeds) stays whole, so its masks are one pass's
    blocks = rerank.user_blocks(candidates.aggregate("purpose, user_id, count(*) as rows", "purpose, user_id").pl(),
                                max_rows=rerank.BLOCK_ROWS // 2, whole_up_to=rerank.BLOCK_ROWS)
    by_purpose = {}
    for block in blocks:
        by_purpose.setdefault(block.purpose, []).append(block)
    # each purpose's n-gram half counts over all its candidate users' histories, once
    ngrams = {}
    for purpose in by_purpose:
        # over all the purpose's candidate users, as recs.lm_candidates counts it
        users = all_candidates.filter(f"purpose = '{purpose}'").aggregate("purpose, user_id", "purpose, user_id")
        groups = users.order("user_id").pl()
        histories = rerank.purpose_histories(fit_events.filter(f"purpose = '{purpose}'").pl())
        ngrams[purpose] = lm.mixture.fit_ngram(rerank.history_sequences(lm, groups, histories), lm.catalogue.n_items)
    yield rerank.uncertainty_frame(rerank.Candidates.from_frame(candidates.limit(0).pl()), np.zeros(0), np.zeros(0))
    ratios, rows, lists = [], 0, 0
    # one bar over all blocks: each report is one pass over one purpose's block
    total, done = passes * len(blocks), 0

    def report(task, *args, **kwargs):
        nonlocal done
        done += 1  # candidate_uncertainty reports one purpose at a time
        dbt.progress("MC dropout", done, total, unit="pass", final=done == total)

    # one block of each purpose at a time: the purposes run at once, in two threads
    for pair in zip_longest(*by_purpose.values()):
        pair = [b for b in pair if b is not None]
        where = " or ".join(f"({b.where()})" for b in pair)
        # the block's new-interest rows of lm_candidates (it already leaves history items out)
        block = rerank.Candidates.from_frame(candidates.filter(where).pl())
        histories = rerank.purpose_histories(fit_events.filter(where).pl())
        mean, std = rerank.candidate_uncertainty(lm, block, histories, passes, seed, progress=report,
                                                 ngrams=ngrams, seeds={b.purpose: b.seed(seed) for b in pair})
        ratios.append(_ratios(mean, std, sample=len(blocks) > 2))
        rows, lists = rows + block.frame.height, lists + block.groups.height
        yield rerank.uncertainty_frame(block, mean, std)
    median = float(np.median(np.concatenate(ratios))) if ratios and sum(map(len, ratios)) else 0.0
    pool = all_candidates.aggregate("count(*)").fetchall()[0][0]
    dbt.log(f"lm_candidate_uncertainty: {rows} new-interest candidates (of {pool} in the pool) of {lists} lists "
            f"in {len(blocks)} blocks, "
            f"{passes} MC-dropout passes, median spread/mean {median:.2f}")


def _ratios(mean, std, sample):
    """spread / mean of the candidates with a mean; with many blocks, a sample of each
    (every block's, for the logged median, must not add up to the pool)."""
    ok = mean > 0
    ratio = (std[ok] / mean[ok]).astype(np.float32)
    return ratio[:: ratio.size // 100_000 + 1] if sample else ratio
