-- One row per training epoch of each checkpoint, unnested from ml.lm_checkpoints.history
-- so BI can chart the learning curve without parsing JSON.
with checkpoints as (
    select checkpoint_id, trained_at, history from {{ ref('lm_checkpoints') }}
),

epochs as (
    select checkpoint_id, trained_at, unnest(from_json(history, '["JSON"]')) as epoch_json
    from checkpoints
)

select
    checkpoint_id,
    (epoch_json ->> 'epoch')::integer as epoch,
    (epoch_json ->> 'train_loss')::double as train_loss,
    (epoch_json ->> 'valid_hit_rate')::double as valid_hit_rate,
    (epoch_json ->> 'valid_ndcg')::double as valid_ndcg,
    (epoch_json ->> 'rnn_valid_ndcg')::double as rnn_valid_ndcg,
    (epoch_json ->> 'rnn_weight')::double as rnn_weight,
    -- the neural part alone (the sequence model without the n-gram half) and its mixture weight,
    -- under the names the lm_neural strategy's readers look for
    (epoch_json ->> 'rnn_valid_ndcg')::double as valid_ndcg_neural,
    (epoch_json ->> 'rnn_valid_hit_rate')::double as valid_hit_rate_neural,
    (epoch_json ->> 'rnn_weight')::double as mixture_weight,
    (epoch_json ->> 'seconds')::double as seconds,
    trained_at
from epochs
order by checkpoint_id, epoch
