#!/usr/bin/env bash
# The entity-linking study of models/linking.md on the emoji knowledge base: every linker, 3 seeds
# (42-44), the task's and trainer's defaults (configs/task/entity_linking.yaml,
# configs/trainer/linking.yaml). Every row is a run folder under $OUT (default
# results/linking/emoji); a row whose summary.json exists is kept, so the script resumes where a
# previous invocation stopped. The table:
#
#   bash benchmarks/linking_study.sh [OUT]
#   .venv/bin/python -m mmgraph.report results/linking/emoji --no-plots \
#       --metrics mrr,hits@1,hits@5,mr,mrr_seen,hits@1_seen,mrr_unseen,hits@1_unseen,mr_unseen
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/linking/emoji}
PY=${PY:-.venv/bin/python}
COMMON=(dataset=emoji runs=3 trainer.progress=false)
row() {  # row <folder> <overrides...>
  local dir=$OUT/$1; shift
  if [ -f "$dir/summary.json" ]; then echo "kept: $dir"; return; fi
  echo "running: $dir ($*)"
  $PY -m mmgraph.bench "${COMMON[@]}" "$@" "hydra.run.dir=$dir"
}
row dual_encoder model=dual_encoder
row graph_linker model=graph_linker
row mimic model=mimic
row dual_encoder-text 'features.modalities=[text]' model=dual_encoder
row dual_encoder-image 'features.modalities=[image]' model=dual_encoder
row graph_mimic model=graph_mimic
