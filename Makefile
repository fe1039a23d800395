# Two commands a newcomer needs:  `make repro`  and  `make test`.  Both install everything first.
VENV ?= .venv
PY := $(VENV)/bin/python
DVC := $(VENV)/bin/dvc
STAMP := $(VENV)/.gcseg-installed

.PHONY: install repro test test-fast bench benchmarks report study unseen clean-venv

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml scripts/install.sh scripts/build_minkowski.sh
	VENV=$(VENV) bash scripts/install.sh
	touch $@

install: $(STAMP)

## make repro: install, run the whole method on the embedded synthetic default, print the ablation table
repro: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(DVC) repro
	@echo && cat metrics/eval/ablation.md && echo
	@echo "HTML report (open in a browser): $(CURDIR)/metrics/report/report.html"
	@echo "Every number: source $(VENV)/bin/activate && dvc metrics show"

## make test: install, run the whole test suite (CPU only, no weights, no network)
test: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

test-fast: install
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow"

## make bench: the benchmark suite -> metrics/bench.json, then BENCHMARKS.md
bench: install
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench run --out metrics/bench.json
	$(PY) -m bench report --bench metrics/bench.json --out BENCHMARKS.md

## make study: the whole default for seeds 0 1 2 as DVC experiments -> metrics/study/seeds.{json,md} (mean, spread)
study: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m gcseg.study --seeds 0 1 2 --out metrics/study

## make unseen: the final model on every room of two fresh synth seeds (gcseg predict + evaluate) beside its val
## figure, the rooms' tracked labels beside it -> metrics/unseen/unseen.{json,md} (a train/val leak would show; ~5 min)
unseen: install
	OMP_NUM_THREADS=2 $(PY) -m stages.unseen --checkpoint data/models/stage3/model.pt --seed 77 --seed 1234 \
		--out metrics/unseen

clean-venv:
	rm -rf $(VENV)
