# muejam.dbops: `make demo` runs the main job against the containerized lab; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
SUITE ?= bookworm
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

.PHONY: help setup demo test unit integration lint sanity rules molecule images lab-up lab-down lab-status clean

help:
	@echo "make demo      run the main job against the containerized lab"
	@echo "make test      run every test (unit, integration, ansible-lint, ansible-test sanity, Molecule)"
	@echo "make lab-up | lab-down | lab-status | unit | integration | lint | sanity | rules | molecule"

## Set-up: virtualenv with pinned requirements, a Docker engine, the collection link, lab images.
setup:
	@scripts/setup-venv.sh
	@scripts/ensure-docker.sh
	@mkdir -p .collections/ansible_collections/muejam
	@ln -sfn ../../.. .collections/ansible_collections/muejam/dbops
	@$(BIN)/python lab/lab.py images --suite $(SUITE) >/dev/null

images: setup
	@for s in bullseye bookworm trixie; do $(BIN)/python lab/lab.py images --suite $$s; done

lab-up: setup
	@$(BIN)/python lab/lab.py up --suite $(SUITE) >/dev/null
	@$(BIN)/ansible-playbook lab/provision.yml

lab-down:
	@python3 lab/lab.py down

lab-status:
	@python3 lab/lab.py status

demo: lab-up
	@$(BIN)/ansible-playbook lab/demo.yml

## Tests
test: setup
	@scripts/run-tests.sh

unit: setup
	@$(BIN)/python -m pytest tests/unit

integration: setup
	@$(BIN)/python -m pytest tests/integration

lint: setup
	@scripts/run-tests.sh lint

sanity: setup
	@scripts/run-tests.sh sanity

rules: setup
	@scripts/run-tests.sh rules

molecule: setup
	@scripts/run-tests.sh molecule

clean: lab-down
	rm -rf build .pytest_cache tests/output
