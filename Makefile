# One task runner; CI calls the README's commands, which these targets mirror.
.PHONY: quickstart test lint layers

quickstart:
	python3 -m venv .venv && . .venv/bin/activate && pip install '.[quickstart]' && bash examples/quickstart/run.sh

test:
	python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m pytest

lint:
	ruff check src tests bench

layers:
	python3 ../shared/tools/check_layers.py
