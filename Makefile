# One task runner; CI calls the README's commands, which these targets mirror.
.PHONY: quickstart test lint layers

quickstart:
	pip install '.[quickstart]' && bash examples/quickstart/run.sh

test:
	pip install -e '.[dev]' && python -m pytest

lint:
	ruff check src tests

layers:
	python3 ../shared/tools/check_layers.py
