# berth: one plain GNU Makefile.  `make` builds ./berth, `make test` runs
# every test through prove, `make asan` does the same under ASan/UBSan.
-include config.mak

PKG_CONFIG ?= pkg-config
CC ?= cc
DEPS = libssh libgit2 libarchive yaml-0.1 libcurl libpq zlib libcrypto libmicrohttpd
B ?= build
PREFIX ?= /usr/local
# V=1 shows the full compiler commands.
Q = $(if $(V),,@)

# Recursive (=) on purpose: expanded when a recipe runs, after the deps
# target has installed what a fresh machine lacks.
DEP_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(DEPS) 2>/dev/null)
DEP_LIBS = $(shell $(PKG_CONFIG) --libs $(DEPS) 2>/dev/null) -pthread

WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	-Wshadow -Wpointer-arith -Wcast-qual -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(DEP_CFLAGS) -MMD -MP
ifdef SANITIZE
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif

SRCS := $(wildcard server/*.c)
# Text built into the binary (scripts/embed): the Lua router nginx loads.
EMBED_OBJS := $(B)/router_lua.o
OBJS := $(SRCS:server/%.c=$(B)/%.o) $(EMBED_OBJS)
LIBOBJS := $(filter-out $(B)/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/unit/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/replay/%)

.PHONY: all test check asan fuzz bench conformance run install uninstall clean units deps
all: berth

# Installs the Debian packages berth needs (quick when all are present).
deps:
	@scripts/install-deps
	@$(PKG_CONFIG) --exists $(DEPS) || { echo "berth: missing libraries: $(DEPS)" >&2; exit 1; }

berth: $(B)/berth
	@if [ "$(B)" = build ]; then ln -sf $(B)/berth berth; fi

$(B)/berth: $(OBJS)
	@echo "  LINK $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(OBJS) $(DEP_LIBS)

# The dashboard's pages are shipped inside the binary (.incbin).
DASHBOARD_WWW := $(wildcard server/www/*)
$(B)/dashboard.o build-fuzz/dashboard.o: $(DASHBOARD_WWW)
# The compiled-in data folder follows PREFIX (at build time).
$(B)/paths.o: ALL_CFLAGS += -DBERTH_DATADIR='"$(PREFIX)/share/berth"'

$(B)/%.o: server/%.c | $(B)
	@echo "  CC   $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/router_lua.c: server/router.lua scripts/embed | $(B)
	@echo "  GEN  $@"
	$(Q)scripts/embed router_lua <$< >$@.new && mv $@.new $@

$(B)/router_lua.o: $(B)/router_lua.c
	@echo "  CC   $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B): | deps
	mkdir -p $(B)/unit $(B)/replay

$(B)/unit/%: tests/unit/%.c $(LIBOBJS) | $(B)
	@echo "  CC   $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Iserver -o $@ $< $(LIBOBJS) $(LDFLAGS) $(DEP_LIBS)

# Each fuzz target also builds with a standalone driver that replays its
# committed corpus, so `make test` exercises every parser on those inputs.
$(B)/replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(LIBOBJS) | $(B)
	@echo "  CC   $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Iserver -o $@ $< tests/fuzz/replay.c $(LIBOBJS) $(LDFLAGS) $(DEP_LIBS)

units: $(UNIT_BINS) $(REPLAY_BINS)

PROVE ?= prove
TESTS ?= tests/t[0-9]*.sh
test: berth units
	$(PROVE) --exec tests/run-test.sh $(UNIT_BINS) $(REPLAY_BINS) $(TESTS)
check: test

asan:
	$(MAKE) B=build-asan SANITIZE=address,undefined CFLAGS="-O1 -g" units build-asan/berth
	BERTH=$(CURDIR)/build-asan/berth $(PROVE) --exec tests/run-test.sh \
		$(UNIT_SRCS:tests/unit/%.c=build-asan/unit/%) \
		$(FUZZ_SRCS:tests/fuzz/%.c=build-asan/replay/%) $(TESTS)

# libFuzzer targets (clang); run one with e.g. build-fuzz/fuzz-manifest -max_total_time=60
fuzz:
	$(MAKE) B=build-fuzz CC=clang SANITIZE=fuzzer-no-link,address,undefined CFLAGS="-O1 -g" $(LIBOBJS:$(B)/%=build-fuzz/%)
	for f in $(FUZZ_SRCS:tests/fuzz/%.c=%); do \
		clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined $(DEP_CFLAGS) -Iserver \
			-o build-fuzz/$$f tests/fuzz/$$f.c $(LIBOBJS:$(B)/%=build-fuzz/%) $(DEP_LIBS) || exit 1; done

bench: berth $(B)/unit/router
	scripts/bench

# libgit2's own online test suite (push, ssh clone) against berth: builds
# it from Debian's source package once, into build-conformance/.
conformance: berth
	scripts/conformance

run: berth
	scripts/run

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, start_server,
# the built-in buildpacks and example hooks in PREFIX/share/berth (found
# relative to the binary, so a DESTDIR or relocated copy works too), the
# docs, and the systemd unit.  make uninstall removes exactly those and
# never the state folder (/var/lib/berth).
BINDIR = $(PREFIX)/bin
DATADIR = $(PREFIX)/share/berth
DOCDIR = $(PREFIX)/share/doc/berth
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
install: berth
	install -D -m 755 $(B)/berth $(DESTDIR)$(BINDIR)/berth
	ln -sf berth $(DESTDIR)$(BINDIR)/start_server
	rm -rf $(DESTDIR)$(DATADIR)
	mkdir -p $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	cp -R buildpacks hooks $(DESTDIR)$(DATADIR)/
	install -m 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	cp -R docs $(DESTDIR)$(DOCDIR)/
	mkdir -p $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		dist/berth.service.in >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/berth.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/berth.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/berth $(DESTDIR)$(BINDIR)/start_server
	rm -f $(DESTDIR)$(SYSTEMD_UNIT_DIR)/berth.service
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-asan build-fuzz build-conformance berth

-include $(OBJS:.o=.d)
