#!/usr/bin/env bash
# The generation study of models/generation.md, MMGL's three questions on Tux Paint's stamps
# (a stamp's description from its image and its folder's stamps), offline SmolLM2-135M-Instruct,
# 3 seeds (42-44), on a CPU-sized protocol: 5 neighbours per stamp, 2 epochs over the 570
# training examples, one evaluation at the end (100 validation and 100 test examples, the same
# for every row), at most 24 new tokens, greedy. Every row is a run folder under $OUT (default
# results/generation/tuxpaint); a row whose summary.json exists is kept, so the script resumes
# where a previous invocation stopped. Rows run in the order below (the context question first).
#
#   bash benchmarks/generation_study.sh [OUT]
#   .venv/bin/python benchmarks/generation_tables.py results/generation/tuxpaint
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/generation/tuxpaint}
PY=${PY:-.venv/bin/python}
COMMON=(dataset=tuxpaint runs=3 task.max_neighbors=5 task.eval_sample=100 trainer.max_epochs=2
        trainer.eval_every=2 model.module.max_new_tokens=24 trainer.progress=false)
row() {  # row <folder> <overrides...>
  local dir=$OUT/$1; shift
  if [ -f "$dir/summary.json" ]; then echo "kept: $dir"; return; fi
  echo "running: $dir ($*)"
  $PY -m mmgraph.bench "${COMMON[@]}" "$@" "hydra.run.dir=$dir"
}
# (a) what the neighbours show x how they enter the LM (LoRA, no positional encoding)
row context/sa_e-none model=sa_e task.context=none
row context/sa_e-multimodal model=sa_e task.context=multimodal
row context/sa_e-text model=sa_e task.context=text
row context/sa_te-text model=sa_te task.context=text
row context/sa_te-multimodal model=sa_te task.context=multimodal
# two more seeds for the goal's comparison (SA-E multimodal vs none, paired by seed), in their own
# folders: generation_tables.py merges <row>.seeds* folders into <row> for the goal check only
row context/sa_e-none.seeds45-46 model=sa_e task.context=none 'seeds=[45,46]'
row context/sa_e-multimodal.seeds45-46 model=sa_e task.context=multimodal 'seeds=[45,46]'
row context/ca_e-none model=ca_e task.context=none
row context/ca_e-text model=ca_e task.context=text
row context/ca_e-multimodal model=ca_e task.context=multimodal
# (b) the neighbours' graph: SA-E, multimodal neighbours (none = context/sa_e-multimodal)
row pe/sa_e-laplacian model=sa_e model.module.pe=laplacian
row pe/sa_e-gnn model=sa_e model.module.pe=gnn
# (c) fine-tuning: SA-E, multimodal neighbours (LoRA = context/sa_e-multimodal; Flamingo =
# context/ca_e-multimodal)
row peft/sa_e-prefix model=sa_e model.module.peft=prefix
row peft/sa_e-full model=sa_e model.module.peft=full trainer.lr=0.00005
