# Prepaid water & electricity metering for Odoo 18 — developer entry points.
# The benchmarks and the simulator use the interpreter the scripts use: PYTHON
# if given, else the project's .venv (made by make setup when no Odoo imports),
# else python3.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: run test setup lint bench-poll bench-billing bench-plausibility bench-month bench-reports bench-portal bench-servers simulator help

help:
	@echo "make run         demo database + simulator + Odoo on http://localhost:8069"
	@echo "make test        fresh database, all add-ons, Odoo tests + pytest"
	@echo "make setup       what run and test need (Odoo 18 in .venv if missing, PostgreSQL...)"
	@echo "make lint        ruff + pylint-odoo"
	@echo "make bench-poll  polling benchmark (10,000 simulated meters)"
	@echo "make bench-billing  billing benchmark (1,000,000 readings)"
	@echo "make bench-plausibility  cost of the reading plausibility check"
	@echo "make bench-month  charge items, apportionment, postpaid bills"
	@echo "make bench-reports  monthly report, aggregates, batch tasks"
	@echo "make bench-portal  tenant portal and WeChat Pay notifications"
	@echo "make bench-servers  two Odoo servers on one database, killed and restarted"
	@echo "make simulator   the demo meter fleet alone"

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

setup:
	@bash scripts/setup.sh

lint:
	ruff check addons tests simulator bench
	ruff format --check addons tests simulator bench
	pylint --rcfile=.pylintrc-mandatory addons/*/

bench-poll:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/poll.py

bench-billing:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/billing.py

bench-plausibility:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/plausibility.py

bench-month:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/month.py

bench-reports:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/reports.py

bench-portal:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/portal.py

bench-servers:
	PYTHONPATH=$(CURDIR) $(PYTHON) bench/servers.py

simulator:
	PYTHONPATH=$(CURDIR) $(PYTHON) -m simulator --demo
