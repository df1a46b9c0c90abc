#!/usr/bin/env bash
# The remedies study of models/gnn.md ("Does the graph pay off?"): openclipart, grouped split
# (the data set's default), text+image features, MAGB's trainer defaults, 5 seeds (42-46).
# Every cell is a run folder under $OUT (default results/remedies) that `python -m mmgraph.report`
# reads; fusions and the best graph model are chosen on validation accuracy, never on test.
#
#   bash benchmarks/remedies.sh [OUT]        # ~1 h on 2 CPU cores, features cached
#   .venv/bin/python -m mmgraph.report results/remedies --no-plots
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/remedies}
PY=${PY:-.venv/bin/python}
RUNS="runs=5"
bench() {  # bench <folder> <overrides...>: one multirun into $OUT/<folder>/<job number>
  local dir=$1; shift
  $PY -m mmgraph.bench --multirun "$@" $RUNS "hydra.sweep.dir=$OUT/$dir" 'hydra.sweep.subdir=${hydra.job.num}'
}
# graph-free: each modality, then both modalities with no fusion (plain concatenation), with
# per-modality LayerNorm + concatenation, and with attention fusion
bench mlp_modality model=mlp 'features.modalities=[text],[image]'
bench mlp_fusion model=mlp fusion=none,concat,attention
# the MAGB GNNs with the same three fusions
bench gnn_fusion model=gcn,sage fusion=none,concat,attention
bench gat_fusion model=gat fusion=none,concat,attention
# remedies for moderate homophily: personalised-PageRank propagation (APPNP, GCNII), linear
# propagation (SGC), relation-aware models over both relations and the keyword nodes (RGCN, HGT)
bench propagation model=appnp,gcnii,sgc fusion=concat
bench hetero model=rgcn,hgt
# Correct & Smooth (training labels only) on top of the graph-free MLP and of GraphSAGE
bench correct_and_smooth model=mlp,sage fusion=concat task.correct_and_smooth=true
