-- For every LM candidate (recs.lm_candidates), whether it is a new interest for its user and
-- the interest it would open: the rule of new_interests (sql/macros/interests.sql) over each
-- purpose's interests (features.fit_interests), the same rule eval.* uses for
-- new_interest_hit_rate. lm_explore_lists and eval.tradeoff_lists probe only these items.
-- lm_candidates holds each (purpose, user, item) once (its data tests), so the pairs are read as they are.
{{ new_interests(ref('lm_candidates'), ref('fit_interests'), ref('item_interests'), distinct_pairs=false) }}
