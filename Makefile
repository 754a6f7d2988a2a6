# The README's commands. `make run` and `make test` are all a new user needs.
VENV        ?= .venv
PYTHON      ?= python3
BIN         := $(VENV)/bin
export DAGSTER_HOME      ?= $(CURDIR)/.dagster_home
export PLATFORM_DATA_DIR ?= $(CURDIR)/data
export SODA_CORE_TELEMETRY_ENABLED := false
HOST        ?= 127.0.0.1
PORT        ?= 3000

.PHONY: install run test bench bench-incremental bench-latency bench-scale bench-cluster bench-storage soak cluster cluster-down chromium nginx redis postgres sample-data dagster-home clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

dagster-home: $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

sample-data: install
	$(BIN)/platform-assets land --batch all --if-empty --weather

run: install dagster-home sample-data
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

test: install chromium nginx redis
	$(BIN)/pytest

# Debian's Chromium for the browser tests (Playwright never downloads its own).
chromium:
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's nginx: the door to the UI (deploy/door.sh) and its test.
nginx:
	@[ -x /usr/sbin/nginx ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }

# Debian's Redis: the Celery broker of the cluster profile and its test.
redis:
	@[ -x /usr/bin/redis-server ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# Debian's PostgreSQL on loopback for the production-profile test (needs root: apt, runuser):
#   export PLATFORM_TEST_POSTGRES_URL=$$(make -s postgres) && make test
postgres:
	@./deploy/postgres.sh

# The production shape on this machine (root): worker hosts, Redis, SeaweedFS, PostgreSQL, the daemon,
# two webservers behind the door; lands the sample data and prints where to log in. E.g. CLUSTER_UP_ARGS="--days 30".
CLUSTER_UP_ARGS ?=
cluster: install nginx redis
	$(BIN)/python deploy/local_cluster.py up $(CLUSTER_UP_ARGS)

cluster-down:
	$(BIN)/python deploy/local_cluster.py down

clean:
	rm -rf data .dagster_home

# Not part of `make test` (minutes of 2 cores); a tiny smoke run of it is.
bench: install
	$(BIN)/python benchmarks/pipeline.py

# The cost curve at 1x, 4x, 16x and 32x the stores against pandas and DuckDB's floor (about 20 minutes):
# a table, the goals and docs/scale.png. E.g. SCALE_ARGS="--scales 1 4" for a quick curve.
SCALE_ARGS ?=
bench-scale: install
	$(BIN)/python benchmarks/scale.py $(SCALE_ARGS)

# Scale-out (a few minutes; root, for the hosts' network namespaces): the same backfill of daily
# files with one worker host and with two, e.g. CLUSTER_ARGS="--files 48".
CLUSTER_ARGS ?=
bench-cluster: install redis
	PLATFORM_TEST_POSTGRES_URL=$$(./deploy/postgres.sh) $(BIN)/python benchmarks/cluster.py $(CLUSTER_ARGS)

# The landing zone's S3 client (a minute): s3fs, which storage.py uses, against obstore on SeaweedFS.
bench-storage: install
	$(BIN)/python benchmarks/landing_storage.py

bench-incremental: install
	$(BIN)/python benchmarks/incremental.py

# Landing -> fresh features under a real `dagster dev` (about 10 minutes), and the CPU of an idle one.
bench-latency: install
	$(BIN)/python benchmarks/latency.py

# A busy day against a real `dagster dev` (about 10 minutes): files land in bursts while users click.
soak: install
	$(BIN)/python -m platform_assets_tests.e2e.soak
