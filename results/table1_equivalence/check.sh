#!/bin/bash
# Table 1 (cpu) behaviour check (issue 15): every spec's trial config, built by each commit's
# own ablations.run.plan, trained by each commit's own `python -m xane3.train` with
# train.weight_decay=0 (issue 14's decay fix is the one intended change), 8 epochs x 10 steps,
# one torch thread. Identical validation totals mean the reorganisation changed nothing.
#   git worktree add /tmp/wt-old 78b7a88 && git worktree add /tmp/wt-new HEAD
#   results/table1_equivalence/check.sh /tmp/wt-old /tmp/wt-new /tmp/eqv
set -u
OLD=$1 NEW=$2 OUT=$3 PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/runs"
for s in baseline no_layer_norm no_tensorial_features no_attention_pooling no_gated_residual \
         no_global_background no_derivative_loss basis_learn_centers_widths \
         basis_learn_widths_physics basis_learn_widths_uniform; do
  for side in old new; do
    wt=$OLD; [ $side = new ] && wt=$NEW
    [ -f "$OUT/runs/$side-$s/test.json" ] && continue
    (cd "$wt" && PYTHONPATH=$wt $PY "$HERE/cfg.py" $s "$OUT/$side-$s.json" >/dev/null &&
     PYTHONPATH=$wt $PY -m xane3.train --config "$OUT/$side-$s.json" --out "$OUT/runs/$side-$s" \
       --quiet > "$OUT/runs/$side-$s.log" 2>&1)
    echo "$s $side rc=$? $(date +%T)"
  done
done
$PY "$HERE/compare.py" "$OUT/runs"
