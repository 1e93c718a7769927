# zookeeper: a FastCGI job service behind nginx.
# `make` builds, `make check` tests, `make run` serves https://localhost:8443.
# User CXXFLAGS/LDFLAGS extend ours; PREFIX and DESTDIR follow GNU conventions.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
NGINXDIR   ?= $(SYSCONFDIR)/nginx
DATADIR    ?= $(PREFIX)/share
DESTDIR    ?=

CXX        ?= g++
CXXFLAGS   ?= -O2 -g
LDFLAGS    ?=
WARN       := -Wall -Wextra -Werror -Wshadow -Wpedantic -Wnon-virtual-dtor
DEPFLAGS    = -MMD -MP

# SANITIZER=address|undefined|thread builds into its own folder.
SANITIZER  ?=
ifeq ($(SANITIZER),)
  BUILD    ?= build
  SANFLAGS :=
else ifneq ($(filter $(SANITIZER),address undefined thread),)
  BUILD    ?= build/$(SANITIZER)
  SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer
else
  $(error SANITIZER must be address, undefined or thread, not '$(SANITIZER)')
endif

ALL_CXXFLAGS = -std=c++20 $(WARN) $(SANFLAGS) -Isrc -isystem $(PG_INCLUDE) -pthread $(DEPFLAGS) $(CPPFLAGS) $(CXXFLAGS)
ALL_LDFLAGS  = $(SANFLAGS) -pthread $(LDFLAGS)
LDLIBS       = -lfcgi -luuid -lsqlite3 -lpq
# libpq's headers (Debian's libpq-dev) live outside the default search path.
PG_INCLUDE  ?= /usr/include/postgresql

CONFIG     ?= zookeeper.conf
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

SRC        := $(shell find src -name '*.cpp' ! -name main.cpp | sort)
OBJ        := $(SRC:%.cpp=$(BUILD)/%.o)
TEST_SRC   := $(shell find tests/unit -name '*.cpp' | sort)
TEST_OBJ   := $(TEST_SRC:%.cpp=$(BUILD)/%.o)
BIN        := $(BUILD)/zookeeper-fcgi
UNIT       := $(BUILD)/unit-tests

.PHONY: all check unit integration ui-check run install uninstall clean bench \
        asan tsan deps systemd-check fuzz bench-profile deb

all: $(BIN)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

# The version is baked into this one object, so a bump rebuilds only it.
$(BUILD)/src/util/version.o: ALL_CXXFLAGS += -DZK_VERSION='"$(VERSION)"'
$(BUILD)/src/util/version.o: $(wildcard VERSION)

$(BUILD)/libzookeeper.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(BUILD)/libzookeeper.a
	$(CXX) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(TEST_OBJ): ALL_CXXFLAGS += -Itests/unit

$(UNIT): $(TEST_OBJ) $(BUILD)/libzookeeper.a
	$(CXX) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

# Installs missing Debian packages (as root); a no-op when all are present.
deps:
	@deploy/install-deps.sh

# Each suite writes "passed failed" to $(BUILD)/results/; the last line sums them.
check: deps
	@tests/preflight.sh $(BUILD)
	@rm -rf $(BUILD)/results && mkdir -p $(BUILD)/results
	@$(MAKE) --no-print-directory -j$$(nproc) all $(UNIT)
	-@$(MAKE) --no-print-directory unit
	-@$(MAKE) --no-print-directory integration
	-@$(MAKE) --no-print-directory ui-check
	-@tests/fuzz/run.sh $(CHECK_FUZZ_SECONDS) $(BUILD)/results/fuzz
	@tests/summary.sh $(BUILD)/results

# The PostgreSQL store's unit tests run against a throwaway cluster of their
# own (fsync off: unit tests only; the integration tests keep the real
# settings). Without it they fail, never skip.
PG_UNIT_DIR  = $(BUILD)/pg-unit
PG_UNIT_PORT ?= 54392
unit: $(UNIT)
	@mkdir -p $(BUILD)/results
	@url=$$(deploy/pg-cluster.sh start $(PG_UNIT_DIR) --port $(PG_UNIT_PORT) --fsync off) || url=''; \
	ZK_TEST_PG_URL="$$url" tests/run-unit.sh $(UNIT) $(BUILD)/results/unit; status=$$?; \
	deploy/pg-cluster.sh stop $(PG_UNIT_DIR) --port $(PG_UNIT_PORT) || true; exit $$status

# The integration suites once per backend, each with its own results file
# (summary.sh adds them up): SQLite with its one worker, then PostgreSQL with
# three behind one nginx upstream, a throwaway cluster in each stack's prefix.
# The contract suites run on both; a test that is one backend's says why
# (run.py --list): the SQLite run also has the SQLite store's faults and
# `make run` itself, the PostgreSQL run the cluster and database fault suites.
# Both run even when the first fails. Each run's watchdog is a ceiling, not an
# estimate (run.py's default is 240 s): loaded 2-core runs took about 4 min
# (SQLite) and 6 min (PostgreSQL, whose stacks each start a cluster and three
# workers) before the fault suites, which add about 5 min between them (a
# 15 s stop and a 20 s freeze of the database are required, and each fault
# has its own stack, load and settling time), and the failover tests (a
# Patroni cluster, three faults) about 2.5 min to the PostgreSQL run. A hang
# still ends the run.
INTEGRATION_TIMEOUT_S  ?= 1080
INTEGRATION_PG_WORKERS ?= 3
integration: $(BIN)
	@mkdir -p $(BUILD)/results
	@status=0; \
	python3 tests/integration/run.py --bin $(BIN) --build $(BUILD) --backend sqlite \
	    --timeout $(INTEGRATION_TIMEOUT_S) --results $(BUILD)/results/integration-sqlite || status=1; \
	python3 tests/integration/run.py --bin $(BIN) --build $(BUILD) --backend postgresql \
	    --workers $(INTEGRATION_PG_WORKERS) --timeout $(INTEGRATION_TIMEOUT_S) \
	    --results $(BUILD)/results/integration-postgresql || status=1; \
	exit $$status

# The dashboard in real headless Chromium (Debian's chromium, playwright-core
# from npm into $(BUILD)/ui/node); screenshots in $(BUILD)/ui/screenshots.
ui-check: $(BIN)
	@mkdir -p $(BUILD)/results
	@BUILD=$(BUILD) BIN=$(BIN) tests/ui/run.sh $(BUILD)/results/ui

# libFuzzer targets (clang, ASan + UBSan); make check runs each briefly.
FUZZ_SECONDS       ?= 60
CHECK_FUZZ_SECONDS ?= 10
fuzz:
	@mkdir -p $(BUILD)/results
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(BUILD)/results/fuzz

# STORE=postgresql WORKERS=N: N workers on a throwaway PostgreSQL cluster in
# $(BUILD)/run/pg, kept between runs like the SQLite file. HA=1: on a Patroni
# cluster instead (etcd, a primary and a synchronous standby) in $(BUILD)/run/ha.
# RUN_ARGS: more deploy/run-stack.sh options, after ours so they win (the
# tests pass their own --prefix, --https-port and --http-port). run-stack.sh
# checks CONFIG before starting anything, and takes the terminal from make
# while it runs, so that Ctrl-C reaches it alone: it stops the stack and exits
# 0, and so does make (see the top of run-stack.sh).
STORE    ?= sqlite
WORKERS  ?= 1
HA       ?=
HA_ARG    = $(if $(filter-out 0,$(HA)),--ha)
RUN_ARGS ?=
run: deps $(BIN)
	@deploy/run-stack.sh --bin $(BIN) --config $(CONFIG) --prefix $(BUILD)/run --store $(STORE) --workers $(WORKERS) $(HA_ARG) $(RUN_ARGS)

# wrk against the real stack, each figure as a ratio to two ceilings measured
# in the same run: nginx's own return 200, and the FastCGI hop with a free
# worker (bench/fcgi_hop.py). About 24 min; DURATION=2 REPEATS=1 CAPACITY=0
# for a smoke run.
bench: $(BIN)
	@deploy/install-deps.sh --bench
	@bench/run.sh --bin $(BIN) --build $(BUILD)

# perf, strace and callgrind per-request costs of the worker, and callgrind of
# the FastCGI hop's responder (C API and fcgi++; see bench/profile.sh).
bench-profile: $(BIN)
	@deploy/install-deps.sh --bench
	@bench/profile.sh --bin $(BIN) --build $(BUILD)

asan:
	@$(MAKE) --no-print-directory SANITIZER=address unit
tsan:
	@$(MAKE) --no-print-directory SANITIZER=thread unit

clean:
	rm -rf $(BUILD)

-include $(OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/src/main.d

# ---------------------------------------------------------------------------
# Production install (deployment section; see README "Production").
# `make install` puts the worker, its config, the systemd units and the nginx
# site in place; `make uninstall` removes exactly those files. Neither starts,
# enables or reloads anything (the Debian package's scripts do that), so both work
# with DESTDIR for packaging. An existing zookeeper.conf is never overwritten:
# operators edit it in place; uninstall keeps it too unless it is unchanged.
# ---------------------------------------------------------------------------
ZK_CONFDIR   = $(SYSCONFDIR)/zookeeper
ZK_SNIPDIR   = $(NGINXDIR)/zookeeper
ZK_DOCDIR    = $(DATADIR)/doc/zookeeper
# The dashboard's static files, served by nginx itself (zookeeper-dashboard.conf).
ZK_WEBDIR    = $(DATADIR)/zookeeper/web
ZK_WEB_FILES = $(wildcard web/index.html web/app.js web/style.css docs/openapi.json)
ZK_LOGDIR   ?= /var/log/nginx
# Fixed by RuntimeDirectory=zookeeper in systemd/zookeeper.service (the
# security tests point it elsewhere on the command line).
ZK_SOCKET    = /run/zookeeper/zookeeper.sock
ZK_SNIPPETS  = $(sort $(basename $(wildcard nginx/zookeeper-*.conf.in)) \
                      $(wildcard nginx/zookeeper-*.conf))
ZK_UNIT      = $(DESTDIR)$(UNITDIR)/zookeeper.service
# The worker pool on PostgreSQL: a template unit (one instance per worker),
# the target that starts and stops them all, and the script that writes
# nginx's upstream from the running instances.
ZK_POOL_UNITS = $(DESTDIR)$(UNITDIR)/zookeeper@.service $(DESTDIR)$(UNITDIR)/zookeeper.target
ZK_UPSTREAM_BIN = $(DESTDIR)$(BINDIR)/zookeeper-upstream
# nginx's upstream block, its own file: nginx/upstream.conf.in rendered with
# the single worker's socket, kept as the template in $(DATADIR)/zookeeper and
# installed as the starting point that zookeeper-upstream regenerates.
ZK_UPSTREAM_TEMPLATE = $(DESTDIR)$(DATADIR)/zookeeper/upstream.conf
ZK_UPSTREAM  = $(DESTDIR)$(ZK_SNIPDIR)/upstream.conf
ZK_EXAMPLES  = $(ZK_DOCDIR)/examples
ZK_EXAMPLE_FILES = $(wildcard systemd/examples/*)
ZK_DROPIN    = $(DESTDIR)$(UNITDIR)/nginx.service.d/zookeeper.conf
ZK_SITE      = $(DESTDIR)$(NGINXDIR)/sites-available/zookeeper
ZK_SITE_LINK = $(DESTDIR)$(NGINXDIR)/sites-enabled/zookeeper

# One substitution for every installed text file, so paths agree everywhere.
# The literal paths (in the unit, which stays analyzable as written) go first
# and only where a path starts, so they never rewrite a substituted path.
ZK_PATH_START = \(^\|[ =:+-]\)
ZK_RENDER = sed -e 's\#$(ZK_PATH_START)/usr/local/bin/zookeeper-fcgi\#\1$(BINDIR)/zookeeper-fcgi\#g' \
                -e 's\#$(ZK_PATH_START)/etc/zookeeper\#\1$(ZK_CONFDIR)\#g' \
                -e 's\#$(ZK_PATH_START)/usr/local/share/doc/zookeeper\#\1$(ZK_DOCDIR)\#g' \
                -e 's\#$(ZK_PATH_START)/usr/local/bin/zookeeper-upstream\#\1$(BINDIR)/zookeeper-upstream\#g' \
                -e 's\#$(ZK_PATH_START)/usr/local/share/zookeeper\#\1$(DATADIR)/zookeeper\#g' \
                -e 's\#$(ZK_PATH_START)/etc/nginx/zookeeper\#\1$(ZK_SNIPDIR)\#g' \
                -e 's|@UPSTREAM@|$(ZK_SNIPDIR)/upstream.conf|g' \
                -e 's|@SOCKET@|$(ZK_SOCKET)|g' \
                -e 's|@SNIPPETS@|$(ZK_SNIPDIR)|g' \
                -e 's|@CONFDIR@|$(ZK_CONFDIR)|g' \
                -e 's|@HTPASSWD@|$(ZK_CONFDIR)/operators.htpasswd|g' \
                -e 's|@LOGDIR@|$(ZK_LOGDIR)|g' \
                -e 's|@WEBROOT@|$(ZK_WEBDIR)|g'

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(ZK_CONFDIR) $(DESTDIR)$(ZK_DOCDIR) $(DESTDIR)$(ZK_WEBDIR) \
	    $(DESTDIR)$(ZK_EXAMPLES) \
	    $(DESTDIR)$(UNITDIR)/nginx.service.d $(DESTDIR)$(ZK_SNIPDIR) \
	    $(DESTDIR)$(NGINXDIR)/sites-available $(DESTDIR)$(NGINXDIR)/sites-enabled
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/zookeeper-fcgi
	@if [ -e $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf ]; then \
	    echo "keeping existing $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf"; \
	else \
	    echo "install -m 0644 zookeeper.conf $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf"; \
	    install -m 0644 zookeeper.conf $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf; \
	fi
	install -m 0644 zookeeper.conf $(DESTDIR)$(ZK_DOCDIR)/zookeeper.conf.example
	$(if $(wildcard README.md),install -m 0644 README.md $(DESTDIR)$(ZK_DOCDIR)/README.md)
	$(if $(ZK_WEB_FILES),install -m 0644 $(ZK_WEB_FILES) $(DESTDIR)$(ZK_WEBDIR)/)
	install -m 0644 docs/production.md $(DESTDIR)$(ZK_DOCDIR)/production.md
	@# Rendered to a temporary name and renamed: a reload never reads half a file.
	@set -e; render() { echo "render $$1 -> $$2"; $(ZK_RENDER) "$$1" > "$$2.tmp"; \
	    chmod 0644 "$$2.tmp"; mv -f "$$2.tmp" "$$2"; }; \
	render systemd/zookeeper.service $(ZK_UNIT); \
	render systemd/zookeeper@.service $(DESTDIR)$(UNITDIR)/zookeeper@.service; \
	render systemd/zookeeper.target $(DESTDIR)$(UNITDIR)/zookeeper.target; \
	render systemd/zookeeper-upstream $(ZK_UPSTREAM_BIN); chmod 0755 $(ZK_UPSTREAM_BIN); \
	$(foreach f,$(ZK_EXAMPLE_FILES),render $(f) $(DESTDIR)$(ZK_EXAMPLES)/$(notdir $(f));) \
	render nginx/upstream.conf.in $(ZK_UPSTREAM_TEMPLATE); \
	render nginx/upstream.conf.in $(ZK_UPSTREAM); \
	render systemd/nginx-zookeeper.conf $(ZK_DROPIN); \
	$(foreach f,$(ZK_SNIPPETS),render $(wildcard $(f) $(f).in) $(DESTDIR)$(ZK_SNIPDIR)/$(notdir $(f));) \
	render nginx/site.conf.in $(ZK_SITE)
	ln -sfn ../sites-available/zookeeper $(ZK_SITE_LINK)

# Directories go only when empty: another package or the operator may share them.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/zookeeper-fcgi $(ZK_UNIT) $(ZK_DROPIN) \
	    $(ZK_POOL_UNITS) $(ZK_UPSTREAM_BIN) $(ZK_UPSTREAM_TEMPLATE) $(ZK_UPSTREAM) \
	    $(DESTDIR)$(ZK_DOCDIR)/production.md \
	    $(addprefix $(DESTDIR)$(ZK_EXAMPLES)/,$(notdir $(ZK_EXAMPLE_FILES))) \
	    $(ZK_SITE) $(ZK_SITE_LINK) $(DESTDIR)$(ZK_DOCDIR)/README.md \
	    $(DESTDIR)$(ZK_DOCDIR)/zookeeper.conf.example \
	    $(addprefix $(DESTDIR)$(ZK_WEBDIR)/,$(notdir $(ZK_WEB_FILES))) \
	    $(foreach f,$(ZK_SNIPPETS),$(DESTDIR)$(ZK_SNIPDIR)/$(notdir $(f)))
	@if cmp -s zookeeper.conf $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf; then \
	    rm -f $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf; \
	elif [ -e $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf ]; then \
	    echo "keeping edited $(DESTDIR)$(ZK_CONFDIR)/zookeeper.conf"; \
	fi
	@for d in $(DESTDIR)$(ZK_SNIPDIR) $(DESTDIR)$(ZK_EXAMPLES) $(DESTDIR)$(ZK_DOCDIR) \
	    $(DESTDIR)$(ZK_WEBDIR) $(DESTDIR)$(DATADIR)/zookeeper \
	    $(DESTDIR)$(UNITDIR)/nginx.service.d $(DESTDIR)$(ZK_CONFDIR); do \
	    if [ -d $$d ]; then rmdir --ignore-fail-on-non-empty $$d; fi; \
	done

# The Debian package (debian/): dpkg-buildpackage -us -uc -b in a clean copy
# under build/deb/, then lintian (errors and warnings fail). The .deb lands in
# build/deb/; docs/production.md installs it.
deb:
	@deploy/install-deps.sh --deb
	@deploy/build-deb.sh

# Boots a Debian 12 container with systemd-nspawn and proves the production
# install there. Root; about 2 min on a cold cache (debootstrap + packages
# into build/systemd/base), about 20 s after; not part of `make check`.
systemd-check:
	@tests/systemd/check.sh
