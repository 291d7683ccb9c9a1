# One task runner; CI calls the README's commands, which these targets mirror.
.PHONY: quickstart test lint layers bench bench-serve bench-drift

quickstart:
	python3 -m venv .venv && . .venv/bin/activate && pip install '.[quickstart]' && bash examples/quickstart/run.sh && bash examples/ml/run.sh && bash examples/loop/run.sh

test:
	python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m pytest

lint:
	ruff check src tests bench

layers:
	python3 ../shared/tools/check_layers.py

# cairn vs DVC (bench/README.md); its own venv, bench/.venv, keeps DVC out of .venv.
# Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS='--scale 0.1 --only A,B'.
bench:
	python3 -m venv bench/.venv && . bench/.venv/bin/activate && pip install -e '.[bench]' && python bench/suite.py $(BENCH_ARGS)

# cairn serve vs mlflow models serve (bench/README.md), in the same bench/.venv (MLflow 3.17.2).
# Options go in BENCH_ARGS, e.g. make bench-serve BENCH_ARGS='--rounds 1 --duration 5'.
bench-serve:
	python3 -m venv bench/.venv && . bench/.venv/bin/activate && pip install -e '.[bench]' && python bench/serve.py $(BENCH_ARGS)

# cairn's drift report vs Evidently's DataDriftPreset (bench/README.md); Evidently runs in
# bench/.venv-drift (it needs pandas < 3), cairn in bench/.venv.
bench-drift:
	python3 -m venv bench/.venv-drift && bench/.venv-drift/bin/pip install '.[bench-drift]'
	python3 -m venv bench/.venv && . bench/.venv/bin/activate && pip install -e '.[bench]' && python bench/drift.py --evidently-python bench/.venv-drift/bin/python $(BENCH_ARGS)
