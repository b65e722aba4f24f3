# libdsqlauth. GNU make. `make check` from a fresh clone installs missing
# Debian packages (scripts/install-deps), configures, builds and tests.

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

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
# the shared library must not have undefined symbols, except under the
# sanitizers, whose runtime only the executables link
NO_UNDEFINED := -Wl,--no-undefined
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
NO_UNDEFINED :=
endif
BASE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -Iinclude -pthread

-include config.mk

# Configure on first use; install-deps first so configure finds everything.
config.mk: configure config.mk.in scripts/install-deps
	scripts/install-deps
	./configure --quiet CC="$(CC)"

# a release tarball ships configure; a git checkout makes it
configure: configure.ac
	scripts/install-deps
	autoreconf -fi

LIB_SRCS := $(sort $(wildcard lib/*.c lib/creds/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/pic/%.o)
LIB_DEPS_CFLAGS = $(OPENSSL_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS) $(EXPAT_CFLAGS)
LIB_DEPS_LIBS = $(OPENSSL_LIBS) $(CURL_LIBS) $(CJSON_LIBS) $(EXPAT_LIBS) -pthread

ADAPTER_SRCS := $(sort $(wildcard adapters/libpq/*.c))
ADAPTER_OBJS := $(ADAPTER_SRCS:%.c=$(B)/pic/%.o)

SHLIB := $(B)/libdsqlauth.so.$(VERSION)
SONAME := libdsqlauth.so.$(SOVERSION)
STLIB := $(B)/libdsqlauth.a

TOOLS := $(B)/dsql-token $(B)/dsql-local
TEST_SRCS := $(sort $(wildcard test/check_*.c))
TESTS := $(TEST_SRCS:test/%.c=$(B)/test/%)
BENCHES := $(B)/bench/token-bench $(B)/bench/provider-bench
BENCHES += $(B)/bench/profile-bench

.PHONY: all lib tools check bench install uninstall clean distclean demo valgrind fuzz
all: lib tools

lib: $(SHLIB) $(STLIB)

$(B)/pic/%.o: %.c $(wildcard include/*.h include/dsqlauth/*.h lib/*.h) config.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden $(LIB_DEPS_CFLAGS) $(LIBPQ_CFLAGS) -c $< -o $@

$(SHLIB): $(LIB_OBJS) $(ADAPTER_OBJS) lib/libdsqlauth.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libdsqlauth.map \
	  $(NO_UNDEFINED) $(LDFLAGS) -o $@ $(LIB_OBJS) $(ADAPTER_OBJS) $(LIB_DEPS_LIBS) $(LIBPQ_LIBS)
	ln -sf libdsqlauth.so.$(VERSION) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libdsqlauth.so

$(STLIB): $(LIB_OBJS) $(ADAPTER_OBJS)
	rm -f $@
	ar rcs $@ $^

ALL_LIBS = $(STLIB) $(LIB_DEPS_LIBS) $(LIBPQ_LIBS)

tools: $(TOOLS)
$(B)/dsql-token: $(wildcard tools/dsql-token/*.c tools/dsql-token/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Ilib $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) $(ALL_LIBS)

# dsql-local: the local DSQL stand-in (tools/dsql-local, not part of the .so)
# tools/pgserver: what dsql-local and the planned dsql-proxy share (accept
# loop, pre-login cap, startup packet, log escaping and limits, cancels)
PGSERVER_SRCS := $(sort $(wildcard tools/pgserver/*.c))
DSQL_LOCAL_SRCS := $(sort $(wildcard tools/dsql-local/*.c)) $(PGSERVER_SRCS)
$(B)/dsql-local: $(DSQL_LOCAL_SRCS) $(wildcard tools/dsql-local/*.h tools/pgserver/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -D_DEFAULT_SOURCE -Itools/pgserver $(LIBEVENT_CFLAGS) $(OPENSSL_CFLAGS) $(LDFLAGS) \
	  -o $@ $(DSQL_LOCAL_SRCS) $(STLIB) $(LIBEVENT_LIBS) $(ALL_LIBS)

$(B)/bench/gateway-bench: bench/gateway-bench.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -Ilib $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)
.PHONY: bench-gateway
bench-gateway: $(B)/bench/gateway-bench $(B)/dsql-local $(B)/dsql-token
	B=$(B) sh bench/gateway-bench.sh

$(B)/test/%: test/%.c $(wildcard test/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Ilib $(CHECK_CFLAGS) $(CJSON_CFLAGS) $(LDFLAGS) -o $@ $< \
	  $(ALL_LIBS) $(CHECK_LIBS) $(CJSON_LIBS)

# libpq adapter (issue 6): the Check suite and the integration test need
# libpq's headers; examples and the integration test are built by `make
# check` (test/t-libpq.sh runs the latter under dsql-local).
PQ_TEST_BINS := $(B)/test/check_pq $(B)/test/check_pq_defaults $(B)/test/pq_integration \
  $(B)/test/check_pq_shared
$(PQ_TEST_BINS): CHECK_CFLAGS += $(LIBPQ_CFLAGS)
$(PQ_TEST_BINS): test/fakepg.h adapters/libpq/pq.c
PQ_EXAMPLES := $(B)/examples/connect $(B)/examples/nonblocking-poll $(B)/examples/libuv-connect \
  $(B)/examples/params
$(B)/examples/%: examples/%.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)
$(B)/examples/libuv-connect: examples/libuv-connect.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS) -luv
$(B)/bench/connect-bench: bench/connect-bench.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)
check: $(PQ_EXAMPLES) $(B)/test/pq_integration $(B)/dsql-local
BENCHES += $(B)/bench/connect-bench
$(B)/bench/connect-bench: $(B)/dsql-local

FUZZ_TARGETS := $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(B)/fuzz/replay_%)
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang

check: all $(TESTS) $(SHLIB) $(FUZZ_REPLAYS)
	B=$(B) CC="$(CC)" SANITIZE="$(SANITIZE)" FUZZ_TARGETS="$(FUZZ_TARGETS)" test/run-tests $(TESTS)

# `make check` replays each corpus through its target, without libFuzzer.
$(B)/fuzz/replay_%: test/fuzz/fuzz_%.c test/fuzz/replay.c test/fuzz/fuzz_util.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Ilib $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< test/fuzz/replay.c $(ALL_LIBS)

# `make fuzz` runs every target under libFuzzer+ASan+UBSan for FUZZ_SECONDS,
# growing test/fuzz/corpus/<target>/ (commit what it finds).
$(B)/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_util.h $(LIB_SRCS) $(ADAPTER_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -Ilib \
	  $(LIB_DEPS_CFLAGS) $(LIBPQ_CFLAGS) -o $@ $< $(LIB_SRCS) $(ADAPTER_SRCS) $(LIB_DEPS_LIBS) $(LIBPQ_LIBS)

fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p test/fuzz/corpus/$$t; \
	  $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 test/fuzz/corpus/$$t \
	    2>&1 | grep -E '^(#[0-9]+.*DONE|Done|==[0-9]+==ERROR)' || exit 1; done

# >>> issue 9: fuzz targets for dsql-local's token verifier and startup-packet
# parser (test/fuzz/fuzz_local_*.c), built from those dsql-local sources (the
# more specific patterns win over the generic fuzz rules above).
LOCAL_FUZZ_SRCS := tools/dsql-local/verify.c tools/dsql-local/keys.c \
  tools/dsql-local/util.c $(addprefix tools/pgserver/,wire.c startup.c log.c escape.c ratelimit.c)
LOCAL_FUZZ_CFLAGS := -D_DEFAULT_SOURCE -Itools/dsql-local -Itools/pgserver $(LIBEVENT_CFLAGS)
$(B)/fuzz/replay_local_%: test/fuzz/fuzz_local_%.c test/fuzz/replay.c $(LOCAL_FUZZ_SRCS) tools/dsql-local/local.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LOCAL_FUZZ_CFLAGS) $(OPENSSL_CFLAGS) $(LDFLAGS) -o $@ $< \
	  test/fuzz/replay.c $(LOCAL_FUZZ_SRCS) $(ALL_LIBS)
$(B)/fuzz/fuzz_local_%: test/fuzz/fuzz_local_%.c $(LOCAL_FUZZ_SRCS) tools/dsql-local/local.h $(LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -Ilib $(LOCAL_FUZZ_CFLAGS) \
	  $(LIB_DEPS_CFLAGS) -o $@ $< $(LOCAL_FUZZ_SRCS) $(LIB_SRCS) $(LIB_DEPS_LIBS)
# >>> issue 9: allocation-failure loop over the dsql-local gateway
# (test/gateway_allocfail.c, run by test/t-gateway-allocfail.sh): the
# gateway's sources without its main, cluster and server, with malloc and
# friends wrapped so every allocation can be failed.
GATEWAY_TEST_SRCS := $(filter-out tools/dsql-local/main.c tools/dsql-local/server.c \
  tools/dsql-local/cluster.c,$(DSQL_LOCAL_SRCS))
$(B)/test/gateway_allocfail: test/gateway_allocfail.c $(GATEWAY_TEST_SRCS) \
  $(wildcard tools/dsql-local/*.h tools/pgserver/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -D_DEFAULT_SOURCE -Itools/dsql-local -Itools/pgserver $(LIBEVENT_CFLAGS) \
	  $(OPENSSL_CFLAGS) $(LIBPQ_CFLAGS) $(LDFLAGS) \
	  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free -o $@ $< \
	  $(GATEWAY_TEST_SRCS) $(STLIB) $(LIBEVENT_LIBS) $(ALL_LIBS)
check: $(B)/test/gateway_allocfail
# >>> issue 13: the floods of items 2 and 4 against a real dsql-local
# (test/t-gateway-floods.sh, bench/gateway-floods.sh)
$(B)/test/gateway_flood: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
check: $(B)/test/gateway_flood
.PHONY: bench-gateway-floods
bench-gateway-floods: $(B)/test/gateway_flood $(B)/dsql-local $(B)/dsql-token
	B=$(B) sh bench/gateway-floods.sh
bench-gateway: bench-gateway-floods
# the Check suite of tools/pgserver's pure parts (escaping, startup packet,
# pre-login cap, token bucket), built with those sources
PGSERVER_UNIT_SRCS := $(addprefix tools/pgserver/,escape.c startup.c wire.c preauth.c ratelimit.c)
$(B)/test/check_pgserver: test/check_pgserver.c $(PGSERVER_UNIT_SRCS) $(wildcard tools/pgserver/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -D_DEFAULT_SOURCE -Ilib -Itools/pgserver $(CHECK_CFLAGS) $(LDFLAGS) \
	  -o $@ $< $(PGSERVER_UNIT_SRCS) $(ALL_LIBS) $(CHECK_LIBS)
# <<< issue 13

# `make tsan`: the threaded tests (signer threads in check_token, the
# credentials cache, the concurrent HTTP providers, the pool) built with
# clang -fsanitize=thread in $(B)-tsan; fails on any ThreadSanitizer report
# (exit code 66 or a WARNING line in the output). The pool suite goes through
# $(B)/dsql-local when `make all` has built it.
TSAN_TESTS := check_token check_creds_cache check_http_creds check_pool
.PHONY: tsan
tsan:
	$(MAKE) B=$(B)-tsan CC=clang SANITIZE=thread $(TSAN_TESTS:%=$(B)-tsan/test/%)
	@failed=0; for t in $(TSAN_TESTS); do echo "== tsan $$t"; \
	  fork=yes; [ $$t = check_pool ] && fork=no; \
	  CK_FORK=$$fork AWS_EC2_METADATA_DISABLED=true B=$(B) \
	    TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
	    $(B)-tsan/test/$$t >$(B)-tsan/$$t.log 2>&1; status=$$?; cat $(B)-tsan/$$t.log; \
	  if [ $$status -ne 0 ] || grep -q 'WARNING: ThreadSanitizer' $(B)-tsan/$$t.log; then \
	    echo "tsan $$t FAILED"; failed=1; fi; done; exit $$failed
# <<< issue 9

$(B)/bench/%: bench/%.c bench/benchutil.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -Ilib $(LDFLAGS) -o $@ $< $(ALL_LIBS)

$(B)/demo: tools/demo/demo.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)

demo: all $(B)/demo
	B=$(B) scripts/demo

bench: $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

dsqlauth.pc: dsqlauth.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' $< > $@

install: all dsqlauth.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/dsqlauth $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/dsqlauth.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/dsqlauth/*.h $(DESTDIR)$(INCLUDEDIR)/dsqlauth/
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libdsqlauth.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libdsqlauth.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 dsqlauth.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 644 doc/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 doc/man/*.3 $(DESTDIR)$(MANDIR)/man3/

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/dsqlauth.h
	rm -rf $(DESTDIR)$(INCLUDEDIR)/dsqlauth
	rm -f $(DESTDIR)$(LIBDIR)/libdsqlauth.* $(DESTDIR)$(PKGCONFIGDIR)/dsqlauth.pc
	rm -f $(foreach t,$(TOOLS),$(DESTDIR)$(BINDIR)/$(notdir $(t)))
	rm -f $(foreach m,$(wildcard doc/man/*.1),$(DESTDIR)$(MANDIR)/man1/$(notdir $(m)))
	rm -f $(foreach m,$(wildcard doc/man/*.3),$(DESTDIR)$(MANDIR)/man3/$(notdir $(m)))

clean:
	rm -rf $(B) dsqlauth.pc

distclean: clean
	rm -rf config.mk config.log config.status configure autom4te.cache aclocal.m4

# valgrind memcheck over the core test programs (no fork, so valgrind sees
# the tests themselves); any error or leak fails.
VALGRIND_TESTS ?= $(filter $(B)/test/check_sigv4 $(B)/test/check_token $(B)/test/check_config $(B)/test/check_profile,$(TESTS))
valgrind: $(VALGRIND_TESTS)
	@for t in $(VALGRIND_TESTS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    $$t || exit 1; done

# ODBC adapter (adapters/odbc): its own static library, linked only into
# the programs that use it, never into libdsqlauth.so (no -lodbc there).
ODBC_LIB := $(B)/libdsqlauth-odbc.a
ODBC_OBJS := $(patsubst %.c,$(B)/odbc/%.o,$(sort $(wildcard adapters/odbc/*.c)))
ODBC_PROGS := $(B)/test/odbc_connect $(B)/examples/adapter-skeleton
.PHONY: odbc
all: $(ODBC_LIB)
odbc: $(ODBC_LIB)
check: $(ODBC_PROGS)
$(B)/odbc/%.o: %.c $(wildcard include/*.h include/dsqlauth/*.h) config.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC $(OPENSSL_CFLAGS) $(ODBC_CFLAGS) -c $< -o $@
$(ODBC_LIB): $(ODBC_OBJS)
	rm -f $@
	ar rcs $@ $^
$(B)/test/odbc_connect: test/odbc_connect.c $(ODBC_LIB) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(ODBC_CFLAGS) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
	  -o $@ $< $(ODBC_LIB) $(ALL_LIBS) $(ODBC_LIBS)
$(B)/examples/adapter-skeleton: $(wildcard examples/adapter-skeleton/*.c examples/adapter-skeleton/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) $(ALL_LIBS)
.PHONY: install-odbc uninstall-odbc
install-odbc: $(ODBC_LIB)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/dsqlauth $(DESTDIR)$(MANDIR)/man3
	install -m 644 $(ODBC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 include/dsqlauth/odbc.h $(DESTDIR)$(INCLUDEDIR)/dsqlauth/
	install -m 644 doc/man/dsql_odbc_*.3 $(DESTDIR)$(MANDIR)/man3/
uninstall-odbc:
	rm -f $(DESTDIR)$(LIBDIR)/libdsqlauth-odbc.a $(DESTDIR)$(INCLUDEDIR)/dsqlauth/odbc.h
	rm -f $(foreach m,$(wildcard doc/man/dsql_odbc_*.3),$(DESTDIR)$(MANDIR)/man3/$(notdir $(m)))
# end ODBC adapter

# Connection pool and OCC-retrying transactions (issue 7): the suite and
# the benchmark need libpq's headers; both re-run themselves under
# dsql-local when that has been built (else they start a throwaway
# PostgreSQL).
$(B)/test/check_pool: CHECK_CFLAGS += $(LIBPQ_CFLAGS)
$(B)/test/check_pool: test/pool_harness.h
$(B)/test/check_pool: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc
BENCHES += $(B)/bench/pool-bench
bench: $(B)/bench/pool-bench
$(B)/bench/pool-bench: bench/pool-bench.c test/pool_harness.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)
# Connection storms (issue 14): through dsql-local, with the credentials
# chain on test/aws_test_server.py; test/t-storm.sh runs a short one.
BENCHES += $(B)/bench/storm-bench
$(B)/bench/storm-bench: bench/storm-bench.c bench/benchutil.h test/aws_server.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -Ilib $(LIBPQ_CFLAGS) $(CJSON_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)
$(B)/bench/storm-bench: $(B)/dsql-local
check: $(B)/bench/storm-bench
# ThreadSanitizer run of the pool suite: a clang build in $(B)-tsan (run
# `make all` first to go through dsql-local; else a local PostgreSQL).
.PHONY: tsan-pool
tsan-pool:
	$(MAKE) B=$(B)-tsan CC=clang SANITIZE=thread $(B)-tsan/test/check_pool
	CK_FORK=no TSAN_OPTIONS="halt_on_error=1 exitcode=66" B=$(B) $(B)-tsan/test/check_pool
# valgrind over the pool suite (direct PostgreSQL: valgrind does not follow
# the re-exec under dsql-local; run it inside `dsql-local run` for that).
.PHONY: valgrind-pool
valgrind-pool: $(B)/test/check_pool
	CK_FORK=no DSQL_POOL_TEST_DIRECT=1 valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect $(B)/test/check_pool
check: $(B)/examples/pool-transfers

# >>> issue 7: the pool across a real dsql-local restart (test/t-pool-restart.sh
# runs test/pool_restart, which stops and restarts dsql-local itself)
$(B)/test/pool_restart: test/pool_restart.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(LDFLAGS) -o $@ $< $(ALL_LIBS)
check: $(B)/test/pool_restart $(B)/dsql-local
# <<< issue 7 (pool restart)

# --- issue 8: examples run by test/t-examples.sh, make dist, ABI layout ---
# (block owned by the vendoring/examples/dist/ABI work; keep edits inside)
check: $(B)/examples/token $(B)/examples/custom-provider
# Struct layout check (test/t-abi.sh compares with test/data/abi-layout.txt;
# `make abi-update` rewrites that file after a soname bump or an addition).
$(B)/test/abi_layout: test/abi_layout.c $(wildcard include/*.h include/dsqlauth/*.h) config.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LIBPQ_CFLAGS) $(ODBC_CFLAGS) $(LDFLAGS) -o $@ $<
check: $(B)/test/abi_layout
.PHONY: abi-update
abi-update: $(B)/test/abi_layout $(SHLIB)
	B=$(B) CC="$(CC)" sh test/t-abi.sh --update
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
# --- end issue 8 block ---
