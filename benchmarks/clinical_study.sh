#!/usr/bin/env bash
# The study of models/clinical.md: every patient-graph model and peer on every packaged cohort, at
# 0 / 30 / 50 / 70 % of patients losing each non-clinical modality completely at random (training
# and test folds alike; hepatocellular's immune panel is also missing naturally for 126 of 227),
# by 5-fold cross-validation repeated twice (10 runs per row, the same folds for every row).
# Neural models at width 64, the clinical trainer (configs/trainer/clinical.yaml). Every row is a
# run folder under $OUT (default results/clinical); a row whose summary.json exists is kept, so
# the script resumes where a previous invocation stopped. The tables:
#
#   bash benchmarks/clinical_study.sh [OUT]
#   MECHANISM=mnar_outcome RATES=0.5 bash benchmarks/clinical_study.sh [OUT]   # not at random: rows <cohort>/mnar_outcome_0.5/<model>
#   MECHANISM=mnar_outcome WHERE=train RATES=0.5 bash benchmarks/clinical_study.sh [OUT]   # training folds only: mnar_outcome-train_0.5
#   .venv/bin/python benchmarks/clinical_tables.py results/clinical --out benchmarks/results/clinical_study.md
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/clinical}
PY=${PY:-.venv/bin/python}
COHORTS=${COHORTS:-"breast_cancer hepatocellular nki70 ovarian"}
RATES=${RATES:-"0 0.3 0.5 0.7"}
MECHANISM=${MECHANISM:-mcar}   # mcar | mnar_outcome | mnar_covariate (task.missing.mechanism)
WHERE=${WHERE:-both}           # both | train | test (task.missing.where); rows <mechanism>-<where>_<rate>
COMMON=(task.folds=5 task.repeats=2 trainer.progress=false)
row() {  # row <folder> <overrides...>
  local dir=$OUT/$1; shift
  if [ -f "$dir/summary.json" ]; then echo "kept: $dir"; return; fi
  echo "running: $dir ($*)"
  $PY -m mmgraph.bench "${COMMON[@]}" "$@" "hydra.run.dir=$dir"
}
for rate in $RATES; do
  for cohort in $COHORTS; do
    miss=(dataset=$cohort task.missing.rate=$rate)
    setting=missing_$rate
    if [ "$MECHANISM" != mcar ]; then
      miss+=(task.missing.mechanism=$MECHANISM); setting=${MECHANISM}_$rate
    fi
    if [ "$WHERE" != both ]; then
      miss+=(task.missing.where=$WHERE); setting=${setting%_"$rate"}-${WHERE}_$rate
    fi
    row "$cohort/$setting/coxph" "${miss[@]}" model=coxph
    row "$cohort/$setting/rsf" "${miss[@]}" model=rsf
    row "$cohort/$setting/prompted" "${miss[@]}" model=prompted
    row "$cohort/$setting/mlp-concat" "${miss[@]}" model=mlp fusion=concat model.module.hidden_channels=64
    row "$cohort/$setting/mlp-late" "${miss[@]}" model=mlp fusion=late model.module.hidden_channels=64
    row "$cohort/$setting/rgcn" "${miss[@]}" model=rgcn model.module.hidden_channels=64
    row "$cohort/$setting/hgt" "${miss[@]}" model=hgt model.module.hidden_channels=64
  done
done
