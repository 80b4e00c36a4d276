# The two set-up commands of the README: `make demo` and `make test`.
.PHONY: demo test bootstrap lab-down

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/sdnctl demo

test: bootstrap
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lab-down:
	.venv/bin/sdnctl lab down
