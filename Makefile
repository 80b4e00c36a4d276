# The two set-up commands of the README: `make demo` and `make test`.
.PHONY: demo test bootstrap

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/sdnctl demo

test: bootstrap
	.venv/bin/lint-imports
	.venv/bin/mypy sdnctl/core sdnctl/openflow/codec.py sdnctl/daemon
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
