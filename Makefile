# libdsqlauth. GNU make.
#   make          configure on first use, build the libraries and the tools
#   make check    set up a fresh Debian machine (scripts/install-deps, as
#                 root), build everything, run every test; `make demo` too
#   make install  headers, libraries, pkg-config files, CMake package,
#                 tools, man pages (PREFIX, DESTDIR honoured)
# Plain `make` never installs system packages: it names what is missing and
# the command that installs it. `./configure --without-libpq --without-odbc
# --without-tools` leaves parts out; the core alone needs libcrypto,
# libcurl, cJSON and expat.

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/dsqlauth

.DEFAULT_GOAL := all
VERSION := 0.1.0
SOVERSION := 0
B ?= build

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
SANITIZE ?=
# the shared libraries must not have undefined symbols, except under the
# sanitizers, whose runtime only the executables link
NO_UNDEFINED := -Wl,--no-undefined
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
NO_UNDEFINED :=
endif
BASE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -pthread
# every object and program writes the headers it read to $@.d (included below)
DEPFLAGS = -MMD -MP -MF $@.d

## Configuration

# Goals that set up the whole machine first (every package, test ones too,
# installed when running as root); any other goal only checks.
SETUP_GOALS := check demo tsan valgrind bench bench-gateway bench-gateway-floods bench-proxy fuzz
ifneq ($(filter $(SETUP_GOALS),$(MAKECMDGOALS)),)
ifeq ($(MAKELEVEL)$(MAKE_RESTARTS),0)
ifneq ($(shell scripts/install-deps all >&2; echo $$?),0)
$(error scripts/install-deps could not set up this machine (see above))
endif
endif
endif

-include config.mk

# Configure on first use (or again, with the same options, when configure
# or config.mk.in changed); only check for the packages, never install.
config.mk: configure config.mk.in
	scripts/install-deps --check build
	if [ -f config.status ]; then ./config.status --quiet --recheck && ./config.status --quiet; \
	else ./configure --quiet CC="$(CC)"; fi

# a release tarball ships configure; a git checkout makes it
configure: configure.ac
	scripts/install-deps --check build
	autoreconf -fi

# A configuration made before the test packages were installed is redone
# (same options) for the goals that need them.
ifneq ($(filter $(SETUP_GOALS),$(MAKECMDGOALS)),)
ifneq ($(wildcard config.mk),)
ifneq ($(HAVE_CHECK)$(HAVE_LIBUV),yesyes)
ifeq ($(MAKE_RESTARTS),)
config.mk: FORCE
endif
endif
endif
endif
.PHONY: FORCE
FORCE:

## Libraries
# libdsqlauth       the core: token, signer, credentials, configuration
# libdsqlauth-pq    the libpq adapter: connect, pool, transactions
# libdsqlauth-odbc  the ODBC adapter
# Each is a shared library (own soname, own version script with one node)
# and a static archive; the adapters link the core, never the other way.
CORE_SRCS := $(sort $(wildcard lib/*.c lib/creds/*.c))
PQ_SRCS := $(sort $(wildcard adapters/libpq/*.c))
ODBC_SRCS := $(sort $(wildcard adapters/odbc/*.c))
CORE_OBJS := $(CORE_SRCS:%.c=$(B)/pic/%.o)
PQ_OBJS := $(PQ_SRCS:%.c=$(B)/pic/%.o)
ODBC_OBJS := $(ODBC_SRCS:%.c=$(B)/pic/%.o)

CORE_DEP_CFLAGS = $(CRYPTO_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS) $(EXPAT_CFLAGS)
CORE_DEP_LIBS = $(CRYPTO_LIBS) $(CURL_LIBS) $(CJSON_LIBS) $(EXPAT_LIBS) -pthread
PQ_DEP_CFLAGS = $(LIBPQ_CFLAGS) $(CRYPTO_CFLAGS)
PQ_DEP_LIBS = $(LIBPQ_LIBS) $(CRYPTO_LIBS) -pthread
ODBC_DEP_CFLAGS = $(ODBC_CFLAGS) $(CRYPTO_CFLAGS)
ODBC_DEP_LIBS = $(ODBC_LIBS) $(CRYPTO_LIBS)

CORE_SO := $(B)/libdsqlauth.so.$(VERSION)
PQ_SO := $(B)/libdsqlauth-pq.so.$(VERSION)
ODBC_SO := $(B)/libdsqlauth-odbc.so.$(VERSION)
CORE_A := $(B)/libdsqlauth.a
PQ_A := $(B)/libdsqlauth-pq.a
ODBC_A := $(B)/libdsqlauth-odbc.a
SHLIB := $(CORE_SO)
STLIB := $(CORE_A)

LIBS_BUILT := $(CORE_SO) $(CORE_A)
ifeq ($(WITH_LIBPQ),yes)
LIBS_BUILT += $(PQ_SO) $(PQ_A)
endif
ifeq ($(WITH_ODBC),yes)
LIBS_BUILT += $(ODBC_SO) $(ODBC_A)
endif

$(B)/pic/%.o: %.c config.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden $(OBJ_CFLAGS) $(DEPFLAGS) -c $< -o $@
$(B)/pic/lib/%.o: OBJ_CFLAGS = $(CORE_DEP_CFLAGS)
$(B)/pic/adapters/libpq/%.o: OBJ_CFLAGS = $(PQ_DEP_CFLAGS)
$(B)/pic/adapters/odbc/%.o: OBJ_CFLAGS = $(ODBC_DEP_CFLAGS)

$(CORE_SO): $(CORE_OBJS) lib/libdsqlauth.map
$(PQ_SO): $(PQ_OBJS) adapters/libpq/libdsqlauth-pq.map $(CORE_SO)
$(ODBC_SO): $(ODBC_OBJS) adapters/odbc/libdsqlauth-odbc.map $(CORE_SO)
SO_LIBS_dsqlauth = $(CORE_DEP_LIBS)
SO_LIBS_dsqlauth-pq = $(PQ_DEP_LIBS)
SO_LIBS_dsqlauth-odbc = $(ODBC_DEP_LIBS)
$(B)/lib%.so.$(VERSION):
	$(CC) -shared -Wl,-soname,lib$*.so.$(SOVERSION) -Wl,--version-script=$(filter %.map,$^) \
	  $(NO_UNDEFINED) $(LDFLAGS) -o $@ $(filter %.o %.so.$(VERSION),$^) $(SO_LIBS_$*)
	ln -sf $(notdir $@) $(B)/lib$*.so.$(SOVERSION)
	ln -sf lib$*.so.$(SOVERSION) $(B)/lib$*.so

$(CORE_A): $(CORE_OBJS)
$(PQ_A): $(PQ_OBJS)
$(ODBC_A): $(ODBC_OBJS)
$(B)/lib%.a:
	rm -f $@
	ar rcs $@ $^

# What a program links for each library (static: tests reach internals).
CORE_LINK = $(CORE_A) $(CORE_DEP_LIBS)
PQ_LINK = $(PQ_A) $(CORE_A) $(PQ_DEP_LIBS) $(CORE_DEP_LIBS)
ODBC_LINK = $(ODBC_A) $(CORE_A) $(ODBC_DEP_LIBS) $(CORE_DEP_LIBS)
ALL_A := $(PQ_A) $(CORE_A)
ALL_LIBS = $(PQ_LINK)

## Programs
# Objects of programs (not position-independent); OBJ_CFLAGS per directory.
$(B)/obj/%.o: %.c config.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(OBJ_CFLAGS) $(DEPFLAGS) -c $< -o $@
$(B)/obj/tools/dsql-token/%.o: OBJ_CFLAGS = $(LIBPQ_CFLAGS)
$(B)/obj/tools/dsql-local/%.o: OBJ_CFLAGS = -D_DEFAULT_SOURCE -Itools/pgserver $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
$(B)/obj/tools/dsql-proxy/%.o: OBJ_CFLAGS = -D_DEFAULT_SOURCE -Itools/pgserver -Itools/dsql-token $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
$(B)/obj/tools/pgserver/%.o: OBJ_CFLAGS = -D_DEFAULT_SOURCE -Itools/pgserver $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS)
$(B)/obj/tools/demo/%.o: OBJ_CFLAGS = $(LIBPQ_CFLAGS)
$(B)/obj/examples/%.o: OBJ_CFLAGS =
$(B)/obj/test/%.o: OBJ_CFLAGS = -D_DEFAULT_SOURCE -Ilib -Itools/dsql-local -Itools/pgserver $(LIBEVENT_CFLAGS) \
  $(OPENSSL_CFLAGS) $(LIBPQ_CFLAGS) $(CHECK_CFLAGS)
$(B)/obj/test/fuzz/%.o: OBJ_CFLAGS = -Ilib $(CORE_DEP_CFLAGS)
$(B)/obj/test/fuzz/fuzz_local_%.o: OBJ_CFLAGS = -D_DEFAULT_SOURCE -Itools/dsql-local -Itools/pgserver $(LIBEVENT_CFLAGS) \
  $(OPENSSL_CFLAGS)
objs = $(patsubst %.c,$(B)/obj/%.o,$(1))
# objects made on the way to a program are kept (no rebuild next time)
.SECONDARY:

# Tools: dsql-token (libpq for the exec subcommand's TLS defaults),
# dsql-local and dsql-proxy (libevent, libssl); none is part of a library.
# tools/pgserver: what dsql-local and dsql-proxy share (accept
# loop, pre-login cap, startup packet, log escaping and limits, cancels)
DSQL_TOKEN_SRCS := $(sort $(wildcard tools/dsql-token/*.c))
PGSERVER_SRCS := $(sort $(wildcard tools/pgserver/*.c))
DSQL_LOCAL_SRCS := $(sort $(wildcard tools/dsql-local/*.c)) $(PGSERVER_SRCS)
# dsql-proxy resolves its upstream with dsql-token's target.c
DSQL_PROXY_SRCS := $(sort $(wildcard tools/dsql-proxy/*.c)) tools/dsql-token/target.c $(PGSERVER_SRCS)
TOOLS :=
ifeq ($(WITH_TOOLS),yes)
TOOLS += $(B)/dsql-local $(B)/dsql-proxy
ifeq ($(WITH_LIBPQ),yes)
TOOLS += $(B)/dsql-token
endif
endif
$(B)/dsql-token: $(call objs,$(DSQL_TOKEN_SRCS)) $(CORE_A)
$(B)/dsql-local: $(call objs,$(DSQL_LOCAL_SRCS)) $(CORE_A)
$(B)/dsql-proxy: $(call objs,$(DSQL_PROXY_SRCS)) $(CORE_A)
$(B)/demo: $(call objs,tools/demo/demo.c) $(ALL_A)
$(B)/examples/adapter-skeleton: $(call objs,$(wildcard examples/adapter-skeleton/*.c)) $(CORE_A)
$(B)/dsql-token: PROG_LIBS = $(CORE_LINK) $(LIBPQ_LIBS)
$(B)/dsql-local $(B)/dsql-proxy: PROG_LIBS = $(CORE_LINK) $(LIBEVENT_LIBS) $(OPENSSL_LIBS)
$(B)/demo: PROG_LIBS = $(PQ_LINK)
$(B)/examples/adapter-skeleton: PROG_LIBS = $(CORE_LINK)
# programs made of several objects
$(B)/dsql-token $(B)/dsql-local $(B)/dsql-proxy $(B)/demo $(B)/examples/adapter-skeleton:
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(PROG_LIBS)

# Test programs: one source each, Check and the internals (-Ilib); a test
# adds flags with `$(B)/test/x: CHECK_CFLAGS += ...`, libraries with TEST_LIBS.
TEST_SRCS := $(sort $(wildcard test/check_*.c))
TESTS := $(TEST_SRCS:test/%.c=$(B)/test/%)
$(B)/test/%: test/%.c $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Ilib $(CHECK_CFLAGS) $(CJSON_CFLAGS) $(DEPFLAGS) $(LDFLAGS) -o $@ $< \
	  $(TEST_LIBS) $(ALL_LIBS) $(CHECK_LIBS) $(CJSON_LIBS)

# Examples: one source each, public headers only; EXAMPLE_LIBS says which
# libraries (the libpq adapter unless set).
EXAMPLE_LIBS = $(PQ_LINK)
$(B)/examples/%: examples/%.c $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(DEPFLAGS) $(LDFLAGS) -o $@ $< $(EXAMPLE_LIBS)
$(B)/examples/token: EXAMPLE_LIBS = $(CORE_LINK)
$(B)/examples/libuv-connect: EXAMPLE_LIBS = $(PQ_LINK) $(LIBUV_LIBS)
$(B)/examples/libuv-connect: CFLAGS += $(LIBUV_CFLAGS)

# Benchmarks: one source each, always optimised; BENCH_CFLAGS and BENCH_LIBS
# per benchmark where they differ.
BENCHES := $(B)/bench/token-bench $(B)/bench/provider-bench $(B)/bench/profile-bench \
  $(B)/bench/connect-bench $(B)/bench/pool-bench $(B)/bench/storm-bench \
  $(B)/bench/nonblocking-bench
BENCH_LIBS = $(PQ_LINK)
$(B)/bench/%: bench/%.c $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -Ilib $(LIBPQ_CFLAGS) $(BENCH_CFLAGS) $(DEPFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIBS)
$(B)/bench/token-bench $(B)/bench/provider-bench $(B)/bench/profile-bench $(B)/bench/hop-bench: BENCH_LIBS = $(CORE_LINK)
$(B)/bench/storm-bench $(B)/bench/nonblocking-bench: BENCH_CFLAGS = $(CJSON_CFLAGS)
$(B)/bench/storm-bench $(B)/bench/nonblocking-bench: BENCH_LIBS = $(PQ_LINK) $(CJSON_LIBS)

.PHONY: all lib tools check bench bench-gateway install uninstall clean distclean demo valgrind fuzz tsan
all: lib tools
lib: $(LIBS_BUILT)
tools: $(TOOLS)

## Tests
# `make check` builds everything (the auto-discovered test/check_*.c, the
# examples, the helper programs below) and runs test/run-tests, which runs
# them and every test/t-*.sh.
FUZZ_TARGETS := $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(B)/fuzz/replay_%)
CHECK_PROGS := $(TESTS) $(FUZZ_REPLAYS) $(B)/dsql-local $(B)/dsql-token $(B)/dsql-proxy \
  $(addprefix $(B)/examples/,connect nonblocking-poll libuv-connect params pool-transfers token migrate assume-role \
    custom-provider adapter-skeleton) \
  $(addprefix $(B)/test/,pq_integration pool_restart odbc_connect gateway_allocfail gateway_flood \
    abi_layout fault_transfers occ_client) \
  $(B)/bench/storm-bench
check: check-config all $(CHECK_PROGS)
	B=$(B) CC="$(CC)" SANITIZE="$(SANITIZE)" FUZZ_TARGETS="$(FUZZ_TARGETS)" test/run-tests $(TESTS)
.PHONY: check-config
check-config:
	@[ "$(WITH_LIBPQ)$(WITH_ODBC)$(WITH_TOOLS)" = yesyesyes ] || { echo "make check tests every" \
	  "part: run ./configure without --without-libpq/--without-odbc/--without-tools" >&2; exit 1; }

# libpq adapter suites: libpq's headers
$(B)/test/check_pq $(B)/test/check_pq_defaults $(B)/test/check_pq_shared $(B)/test/pq_integration \
  $(B)/test/check_pq_retry $(B)/test/check_nonblocking_connect: \
  CHECK_CFLAGS += $(LIBPQ_CFLAGS)
# pool suite: re-runs itself under dsql-local when that has been built (else
# it starts a throwaway PostgreSQL); fails allocations through --wrap
$(B)/test/check_pool: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
$(B)/test/check_pool: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc
# the pool across a real dsql-local restart (test/t-pool-restart.sh)
$(B)/test/pool_restart: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
# transfers under dsql-local's injected faults (test/t-dsql-local-faults.sh)
$(B)/test/fault_transfers: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
# one session, simple BEGIN/COMMIT around extended statements (t-dsql-local-occ.sh)
$(B)/test/occ_client: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
# ODBC adapter against dsql-local through psqlODBC (test/t-odbc.sh)
$(B)/test/odbc_connect: $(ODBC_A)
$(B)/test/odbc_connect: CHECK_CFLAGS += $(ODBC_CFLAGS)
$(B)/test/odbc_connect: TEST_LIBS = $(ODBC_A) $(ODBC_DEP_LIBS)
$(B)/test/odbc_connect: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

# Allocation-failure loop over the dsql-local gateway
# (test/t-gateway-allocfail.sh): the gateway's objects without its main,
# cluster and server, with malloc and friends wrapped.
GATEWAY_TEST_OBJS := $(call objs,test/gateway_allocfail.c $(filter-out tools/dsql-local/main.c \
  tools/dsql-local/server.c tools/dsql-local/cluster.c,$(DSQL_LOCAL_SRCS)))
$(B)/test/gateway_allocfail: $(GATEWAY_TEST_OBJS) $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free -o $@ \
	  $(GATEWAY_TEST_OBJS) $(ALL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS)
# the floods against a real dsql-local (test/t-gateway-floods.sh,
# bench/gateway-floods.sh)
$(B)/test/gateway_flood: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
# the Check suite of tools/pgserver's pure parts (escaping, startup packet,
# pre-login cap, token bucket), built with those sources
PGSERVER_UNIT_OBJS := $(call objs,test/check_pgserver.c \
  $(addprefix tools/pgserver/,escape.c startup.c wire.c preauth.c ratelimit.c frames.c tls.c))
$(B)/test/check_pgserver: $(PGSERVER_UNIT_OBJS) $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(PGSERVER_UNIT_OBJS) $(ALL_LIBS) $(LIBEVENT_LIBS) $(OPENSSL_LIBS) $(CHECK_LIBS)
# dsql-local's statement rules (pure), built with their source
SQLRULES_UNIT_OBJS := $(call objs,test/check_sqlrules.c tools/dsql-local/sqlrules.c)
$(B)/test/check_sqlrules: $(SQLRULES_UNIT_OBJS) $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(SQLRULES_UNIT_OBJS) $(ALL_LIBS) $(CHECK_LIBS)
# dsql-local's catalog history (pure), built with its source
CATALOG_UNIT_OBJS := $(call objs,test/check_catalog.c tools/dsql-local/catalog.c)
$(B)/test/check_catalog: $(CATALOG_UNIT_OBJS) $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CATALOG_UNIT_OBJS) $(ALL_LIBS) $(CHECK_LIBS)

# dsql-proxy's SCRAM server side (tools/pgserver/scram.c): RFC 7677 vectors
PGS_SCRAM_OBJS := $(call objs,test/check_pgs_scram.c tools/pgserver/scram.c)
$(B)/test/check_pgs_scram: $(PGS_SCRAM_OBJS) $(ALL_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(PGS_SCRAM_OBJS) $(ALL_LIBS) $(CHECK_LIBS)

# Struct layout (test/t-abi.sh compares with test/data/abi-layout.txt;
# `make abi-update` rewrites that file after an addition or a soname bump).
$(B)/test/abi_layout: test/abi_layout.c config.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(ODBC_CFLAGS) $(DEPFLAGS) $(LDFLAGS) -o $@ $<
.PHONY: abi-update
abi-update: $(B)/test/abi_layout $(LIBS_BUILT)
	B=$(B) CC="$(CC)" sh test/t-abi.sh --update

# Fuzzing. `make check` replays each corpus through its target without
# libFuzzer; `make fuzz` runs every target under libFuzzer+ASan+UBSan for
# FUZZ_SECONDS, growing test/fuzz/corpus/<target>/ (commit what it finds).
# fuzz_local_* exercise dsql-local's token verifier and startup-packet
# parser, built from those dsql-local sources.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
LOCAL_FUZZ_SRCS := tools/dsql-local/verify.c tools/dsql-local/keys.c \
  tools/dsql-local/util.c $(addprefix tools/pgserver/,wire.c startup.c log.c escape.c ratelimit.c)
LOCAL_FUZZ_CFLAGS := -D_DEFAULT_SOURCE -Itools/dsql-local -Itools/pgserver $(LIBEVENT_CFLAGS)
$(B)/fuzz/replay_%: $(call objs,test/fuzz/fuzz_%.c test/fuzz/replay.c) $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CORE_LINK)
$(B)/fuzz/replay_local_%: $(call objs,test/fuzz/fuzz_local_%.c test/fuzz/replay.c $(LOCAL_FUZZ_SRCS)) $(CORE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CORE_LINK) $(OPENSSL_LIBS)
$(B)/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(CORE_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -Ilib \
	  $(CORE_DEP_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_DEP_LIBS)
$(B)/fuzz/fuzz_local_%: test/fuzz/fuzz_local_%.c $(LOCAL_FUZZ_SRCS) $(CORE_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -Ilib $(LOCAL_FUZZ_CFLAGS) \
	  $(CORE_DEP_CFLAGS) -o $@ $< $(LOCAL_FUZZ_SRCS) $(CORE_SRCS) $(CORE_DEP_LIBS)
fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p test/fuzz/corpus/$$t; \
	  $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 test/fuzz/corpus/$$t \
	    2>&1 | grep -E '^(#[0-9]+.*DONE|Done|==[0-9]+==ERROR)' || exit 1; done

# `make tsan`: the threaded tests (signer threads in check_token, the
# credentials cache, the concurrent HTTP providers, the pool) built with
# clang -fsanitize=thread in $(B)-tsan; fails on any ThreadSanitizer report
# (exit code 66 or a WARNING line in the output). The pool suite goes through
# $(B)/dsql-local when `make all` has built it.
TSAN_TESTS := check_token check_creds_cache check_http_creds check_pool
tsan:
	$(MAKE) B=$(B)-tsan CC=clang SANITIZE=thread $(TSAN_TESTS:%=$(B)-tsan/test/%)
	@failed=0; for t in $(TSAN_TESTS); do echo "== tsan $$t"; \
	  fork=yes; [ $$t = check_pool ] && fork=no; \
	  CK_FORK=$$fork AWS_EC2_METADATA_DISABLED=true B=$(B) \
	    TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
	    $(B)-tsan/test/$$t >$(B)-tsan/$$t.log 2>&1; status=$$?; cat $(B)-tsan/$$t.log; \
	  if [ $$status -ne 0 ] || grep -q 'WARNING: ThreadSanitizer' $(B)-tsan/$$t.log; then \
	    echo "tsan $$t FAILED"; failed=1; fi; done; exit $$failed
# the pool suite alone under ThreadSanitizer (run `make all` first to go
# through dsql-local; else a local PostgreSQL)
.PHONY: tsan-pool
tsan-pool:
	$(MAKE) B=$(B)-tsan CC=clang SANITIZE=thread $(B)-tsan/test/check_pool
	CK_FORK=no TSAN_OPTIONS="halt_on_error=1 exitcode=66" B=$(B) $(B)-tsan/test/check_pool

# valgrind memcheck over the core test programs (no fork, so valgrind sees
# the tests themselves); any error or leak fails.
VALGRIND_TESTS ?= $(filter $(B)/test/check_sigv4 $(B)/test/check_token $(B)/test/check_config $(B)/test/check_profile,$(TESTS))
valgrind: $(VALGRIND_TESTS)
	@for t in $(VALGRIND_TESTS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    $$t || exit 1; done
# the pool suite under valgrind (direct PostgreSQL: valgrind does not follow
# the re-exec under dsql-local; run it inside `dsql-local run` for that)
.PHONY: valgrind-pool
valgrind-pool: $(B)/test/check_pool
	CK_FORK=no DSQL_POOL_TEST_DIRECT=1 valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect $(B)/test/check_pool

## Benchmarks and demo
# connect-bench and pool-bench re-run themselves under dsql-local;
# storm-bench (connection storms through dsql-local, with the credentials
# chain on test/aws_test_server.py) too, and test/t-storm.sh runs a short one
$(B)/bench/connect-bench $(B)/bench/pool-bench $(B)/bench/storm-bench: $(B)/dsql-local
bench: $(BENCHES)
	@echo "# $$(nproc) cores,$$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load average $$(cut -d' ' -f1-3 /proc/loadavg), $$(date -u +%FT%TZ)"
	@for b in $(BENCHES); do echo "== $$b (load average $$(cut -d" " -f1-3 /proc/loadavg))"; $$b || exit 1; done
	@echo "# load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"
# login through dsql-local vs direct TLS PostgreSQL login
bench-gateway: $(B)/bench/gateway-bench $(B)/dsql-local $(B)/dsql-token
	B=$(B) sh bench/gateway-bench.sh
# pgbench straight to dsql-local's gateway vs through dsql-proxy vs PgBouncer
.PHONY: bench-proxy
bench-proxy: $(B)/dsql-proxy $(B)/dsql-local $(B)/dsql-token $(B)/bench/hop-bench
	B=$(B) sh bench/proxy-bench.sh
# where dsql-proxy's time goes: perf samples, callgrind call counts
.PHONY: profile-proxy
profile-proxy: $(B)/dsql-proxy $(B)/dsql-local $(B)/dsql-token
	B=$(B) sh bench/proxy-profile.sh
.PHONY: bench-gateway-floods
bench-gateway-floods: $(B)/test/gateway_flood $(B)/dsql-local $(B)/dsql-token
	B=$(B) sh bench/gateway-floods.sh
bench-gateway: bench-gateway-floods

demo: all $(B)/demo
	B=$(B) scripts/demo

## Install
# Headers, man pages and .pc files per library; only the parts configured
# are installed. The .pc files and the CMake package are written here, so
# they name the PREFIX given to `make install`.
PQ_HEADERS := include/dsqlauth/libpq.h include/dsqlauth/pool.h
ODBC_HEADERS := include/dsqlauth/odbc.h
CORE_HEADERS := $(filter-out $(PQ_HEADERS) $(ODBC_HEADERS),$(wildcard include/dsqlauth/*.h))
PQ_MANS := $(wildcard doc/man/dsql_pq_*.3)
ODBC_MANS := $(wildcard doc/man/dsql_odbc_*.3)
CORE_MANS := $(filter-out $(PQ_MANS) $(ODBC_MANS),$(wildcard doc/man/*.3))
TOOL_MANS := $(foreach t,$(TOOLS),$(wildcard doc/man/$(notdir $(t)).1))
INSTALL_PARTS := dsqlauth
INSTALL_HEADERS := $(CORE_HEADERS)
INSTALL_MANS := $(CORE_MANS)
ifeq ($(WITH_LIBPQ),yes)
INSTALL_PARTS += dsqlauth-pq
INSTALL_HEADERS += $(PQ_HEADERS)
INSTALL_MANS += $(PQ_MANS)
endif
ifeq ($(WITH_ODBC),yes)
INSTALL_PARTS += dsqlauth-odbc
INSTALL_HEADERS += $(ODBC_HEADERS)
INSTALL_MANS += $(ODBC_MANS)
endif
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
  -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOVERSION@|$(SOVERSION)|g' \
  -e 's|@INCLUDEDIR_FROM_LIBDIR@|$(shell realpath -m --relative-to=$(LIBDIR) $(INCLUDEDIR))|g'

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/dsqlauth $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/dsqlauth.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(INSTALL_HEADERS) $(DESTDIR)$(INCLUDEDIR)/dsqlauth/
	install -m 644 $(INSTALL_MANS) $(DESTDIR)$(MANDIR)/man3/
	for l in $(INSTALL_PARTS); do \
	  install -m 755 $(B)/lib$$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/ && \
	  ln -sf lib$$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/lib$$l.so.$(SOVERSION) && \
	  ln -sf lib$$l.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/lib$$l.so && \
	  install -m 644 $(B)/lib$$l.a $(DESTDIR)$(LIBDIR)/ && \
	  $(SUBST) packaging/$$l.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/$$l.pc || exit 1; done
	$(SUBST) packaging/dsqlauthConfig.cmake.in >$(DESTDIR)$(CMAKEDIR)/dsqlauthConfig.cmake
	$(SUBST) packaging/dsqlauthConfigVersion.cmake.in >$(DESTDIR)$(CMAKEDIR)/dsqlauthConfigVersion.cmake
ifneq ($(TOOLS),)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(TOOL_MANS) $(DESTDIR)$(MANDIR)/man1/
endif

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/dsqlauth.h
	rm -rf $(DESTDIR)$(INCLUDEDIR)/dsqlauth $(DESTDIR)$(CMAKEDIR)
	rm -f $(foreach l,dsqlauth dsqlauth-pq dsqlauth-odbc,$(DESTDIR)$(LIBDIR)/lib$(l).so* \
	  $(DESTDIR)$(LIBDIR)/lib$(l).a $(DESTDIR)$(PKGCONFIGDIR)/$(l).pc)
	rm -f $(DESTDIR)$(BINDIR)/dsql-token $(DESTDIR)$(BINDIR)/dsql-local $(DESTDIR)$(BINDIR)/dsql-proxy
	rm -f $(foreach m,$(wildcard doc/man/*.1),$(DESTDIR)$(MANDIR)/man1/$(notdir $(m)))
	rm -f $(foreach m,$(wildcard doc/man/*.3),$(DESTDIR)$(MANDIR)/man3/$(notdir $(m)))

## Release
# `make dist`: $(DISTDIR)/libdsqlauth-$(VERSION).tar.gz from the committed
# tree (git archive HEAD; uncommitted changes are left out) plus a
# generated configure, so `./configure && make` needs no autotools.
# Reproducible: sorted names, commit time, numeric owner 0, gzip -n.
# test/t-dist.sh unpacks it elsewhere and builds it.
DISTNAME := libdsqlauth-$(VERSION)
DISTDIR ?= $(B)
.PHONY: dist
dist:
	@test "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$$(pwd -P)" && git rev-parse --verify -q HEAD >/dev/null \
	  || { echo "make dist: needs a git checkout of this tree (it archives HEAD)" >&2; exit 1; }
	@git diff --quiet HEAD -- . || echo "make dist: note: uncommitted changes are not in the tarball (it archives HEAD)" >&2
	rm -rf $(DISTDIR)/$(DISTNAME) $(DISTDIR)/$(DISTNAME).tar.gz
	mkdir -p $(DISTDIR)
	git archive --format=tar --prefix=$(DISTNAME)/ HEAD | tar -x -C $(DISTDIR)
	cd $(DISTDIR)/$(DISTNAME) && autoreconf -fi && rm -rf autom4te.cache configure~
	tar -C $(DISTDIR) --sort=name --mtime="$$(git log -1 --format=%cI HEAD)" --owner=0 --group=0 \
	  --numeric-owner -cf - $(DISTNAME) | gzip -n9 >$(DISTDIR)/$(DISTNAME).tar.gz
	rm -rf $(DISTDIR)/$(DISTNAME)
	@echo "make dist: $(DISTDIR)/$(DISTNAME).tar.gz ($$(git rev-parse --short HEAD))"

clean:
	rm -rf $(B)

distclean: clean
	rm -rf config.mk config.log config.status configure autom4te.cache aclocal.m4

-include $(shell find $(B) -name '*.d' 2>/dev/null)
