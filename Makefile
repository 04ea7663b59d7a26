# mmalloc -- build, test, install.  `make help' lists the targets.

PREFIX      ?= /usr/local
prefix      ?= $(PREFIX)
exec_prefix ?= $(prefix)
libdir      ?= $(exec_prefix)/lib
includedir  ?= $(prefix)/include
datarootdir ?= $(prefix)/share
infodir     ?= $(datarootdir)/info
mandir      ?= $(datarootdir)/man
man1dir     ?= $(mandir)/man1
man3dir     ?= $(mandir)/man3
bindir      ?= $(exec_prefix)/bin
pkgconfigdir ?= $(libdir)/pkgconfig
DESTDIR     ?=

CC      ?= cc
AR      ?= ar
OBJCOPY ?= objcopy
INSTALL ?= install
MAKEINFO ?= makeinfo

VERSION := 1.0.0
SONAME  := libmmalloc.so.1

# Warnings are errors: WERROR= turns that off for an unknown compiler.
# CPPFLAGS, CFLAGS and LDFLAGS are the user's: every compile takes CPPFLAGS
# and CFLAGS, every link (shared libraries too) CFLAGS and LDFLAGS.
WERROR  ?= -Werror
CFLAGS  ?= -O2 -g
CPPFLAGS ?=
LDFLAGS ?=
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(WERROR)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -Iinclude $(CPPFLAGS) $(WARN) \
              $(CFLAGS) $(SANFLAGS)
LINK_FLAGS := $(CFLAGS) $(SANFLAGS) $(LDFLAGS)
# The shared libraries are linked with -z defs (no symbol left undefined)
# unless a sanitizer is on: clang leaves its runtime out of shared
# libraries, whose symbols then come from the program.
ZDEFS   := $(if $(findstring -fsanitize=,$(CFLAGS) $(SANFLAGS) $(LDFLAGS)),,-Wl,-z,defs)
LIBS    := -lpthread

B       ?= build
SRCS    := $(wildcard src/*.c)
OBJS    := $(patsubst src/%.c,$(B)/obj/%.o,$(SRCS))
KP_OBJS := $(patsubst src/%.c,$(B)/obj-kp/%.o,$(filter-out src/malloc.c,$(SRCS)))
HDRS    := include/mmalloc.h src/mmprivate.h src/format.h

SHLIB   := $(B)/libmmalloc.so.$(VERSION)
STLIB   := $(B)/libmmalloc.a
# The library the tests link, never installed: the objects of libmmalloc.a
# with their internal symbols global (the tests call internals), built with
# kill points (MM_KILLPOINTS) and internal assertions (MM_ASSERTS).
ITLIB   := $(B)/libmmalloc-internal.a
# libmmalloc-malloc: the same objects plus malloc.o, the process-wide malloc.
MOBJ    := $(B)/obj/malloc.o
LOBJS   := $(filter-out $(MOBJ),$(OBJS))
MSONAME := libmmalloc-malloc.so.1
MSHLIB  := $(B)/libmmalloc-malloc.so.$(VERSION)
MSTLIB  := $(B)/libmmalloc-malloc.a

TEST_SRCS := $(wildcard tests/test-*.c)
TESTS     := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
TEST_HELPERS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/helper-*.c))
TOOLS     := $(B)/mmtrace-report $(B)/mmtool

.PHONY: all lib check check-vgasan check-layers asan ubsan tsan demo install uninstall info html clean help tools FORCE stress fuzz bench check-malloc

all: lib tools

lib: $(SHLIB) $(STLIB) $(B)/libmmalloc.so.1 $(B)/libmmalloc.so \
     $(MSHLIB) $(MSTLIB) $(B)/libmmalloc-malloc.so.1 $(B)/libmmalloc-malloc.so

$(B)/obj/%.o: src/%.c $(HDRS) | $(B)/obj
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/obj $(B)/tests $(B)/examples:
	mkdir -p $@

$(SHLIB): $(LOBJS) src/libmmalloc.map
	$(CC) $(LINK_FLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libmmalloc.map \
	  $(ZDEFS) -o $@ $(LOBJS) $(LIBS)

$(MSHLIB): $(OBJS) src/libmmalloc-malloc.map
	$(CC) $(LINK_FLAGS) -shared -Wl,-soname,$(MSONAME) \
	  -Wl,--version-script=src/libmmalloc-malloc.map $(ZDEFS) -o $@ $(OBJS) $(LIBS)

$(B)/libmmalloc-malloc.so.1: $(MSHLIB)
	ln -sf libmmalloc-malloc.so.$(VERSION) $@

$(B)/libmmalloc-malloc.so: $(B)/libmmalloc-malloc.so.1
	ln -sf libmmalloc-malloc.so.1 $@

# The static libraries hold one object each, linked from all of theirs
# with -r, whose hidden symbols are then made local: a program sees the
# public API and nothing else, as it does from the shared library, so its
# own mm_free or mm_alloc does not clash with the library's internals.
$(B)/libmmalloc.o: $(LOBJS)
	$(CC) -r -nostdlib -o $@.tmp $(LOBJS)
	$(OBJCOPY) --localize-hidden $@.tmp $@
	rm -f $@.tmp

$(B)/libmmalloc-malloc.o: $(OBJS)
	$(CC) -r -nostdlib -o $@.tmp $(OBJS)
	$(OBJCOPY) --localize-hidden $@.tmp $@
	rm -f $@.tmp

$(MSTLIB): $(B)/libmmalloc-malloc.o
	rm -f $@
	$(AR) rcs $@ $<

$(B)/libmmalloc.so.1: $(SHLIB)
	ln -sf libmmalloc.so.$(VERSION) $@

$(B)/libmmalloc.so: $(B)/libmmalloc.so.1
	ln -sf libmmalloc.so.1 $@

$(STLIB): $(B)/libmmalloc.o
	rm -f $@
	$(AR) rcs $@ $<

$(ITLIB): $(KP_OBJS)
	rm -f $@
	$(AR) rcs $@ $(KP_OBJS)


$(B)/obj-kp:
	mkdir -p $@

$(B)/obj-kp/%.o: src/%.c $(HDRS) | $(B)/obj-kp
	$(CC) $(ALL_CFLAGS) -DMM_KILLPOINTS -DMM_ASSERTS -c $< -o $@

tools: $(TOOLS)

$(B)/mmtrace-report: tools/mmtrace-report.c | $(B)/obj
	$(CC) -std=c11 -D_GNU_SOURCE $(CPPFLAGS) $(WARN) $(LINK_FLAGS) -o $@ $<

# mmtool reads the format through src/mmprivate.h: it links the library's
# objects with their internals (libmmalloc-internal.a).
$(B)/mmtool: tools/mmtool.c tools/mmtool-cmd.c tools/mmtool.h $(HDRS) $(ITLIB) | $(B)/obj
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(CPPFLAGS) $(WARN) $(LINK_FLAGS) -o $@ \
	  tools/mmtool.c tools/mmtool-cmd.c $(ITLIB) -lpthread

# --- tests -------------------------------------------------------------------

TEST_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -Itests $(CPPFLAGS) $(WARN) \
               -Wno-missing-prototypes $(LINK_FLAGS)
TEST_LIBS   := $(ITLIB) -lcmocka -lpthread

$(B)/tests/%: tests/%.c tests/testutil.h $(ITLIB) | $(B)/tests
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

$(B)/tests/test-compat: include/mmalloc-compat.h

# test-handles stops a thread inside the library between the check of its
# descriptor and what it does with it: the library's calls of mm_desc_of go
# through the test's wrapper.
$(B)/tests/test-handles: tests/test-handles.c tests/testutil.h $(ITLIB) | $(B)/tests
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS) -Wl,--wrap=mm_desc_of

# test-sites looks its own functions up with dladdr.
$(B)/tests/test-sites: tests/test-sites.c tests/testutil.h $(ITLIB) | $(B)/tests
	$(CC) $(TEST_CFLAGS) -rdynamic -o $@ $< $(TEST_LIBS)

check-deps:
	@sh tests/need-cmocka.sh

# The link graph of src/ against the layer table of src/README (no cycle, no
# upward call), and the check's own test (it must fail on injected ones).
check-layers: lib
	@python3 tools/check-layers.py src/README $(B)/obj
	@sh tests/check-layers-test.sh $(B)/obj

# valgrind's memcheck and ASan see the blocks of mmalloc heaps (tests/vgasan):
# apart from make check, for valgrind is slow.
check-vgasan: lib
	@sh tests/vgasan/run.sh $(B)

check: check-deps
	@$(MAKE) --no-print-directory lib tools $(TESTS) $(TEST_HELPERS)
	@B=$(B) sh tests/run-tests.sh $(TESTS)

# The suite sees the library's ordinary paths (MMALLOC_ANNOTATE=0: no
# annotation for ASan, which takes the locked paths); tests/vgasan then sees
# the ASan-built library annotate.
asan: check-deps
	@MMALLOC_ANNOTATE=0 $(MAKE) --no-print-directory check B=build-asan CFLAGS="-O1 -g" \
	  SANFLAGS="-fsanitize=address -fno-omit-frame-pointer"
	@sh tests/vgasan/run.sh build-asan

ubsan: check-deps
	@$(MAKE) --no-print-directory check B=build-ubsan CFLAGS="-O1 -g" \
	  SANFLAGS="-fsanitize=undefined -fno-sanitize-recover=all"

# ThreadSanitizer on every test program that starts threads, and on the
# drop-in's thread test (built with MT_TSAN: TSan's runtime needs the C
# library's malloc, so the test calls the default heap through the m* API).
# Static libraries only (clang's TSan runtime cannot be linked into a
# shared library with -z defs).  Any report ends the program with status
# 66, which fails the run.  TSan's lock-order (deadlock) detector is off:
# it tracks at most 64 locks held at once by one thread and stops the
# program with an internal CHECK failure beyond, and fork holds every lock
# of every heap (45 each) across the call; races are still all reported.
TSAN_TESTS := $(patsubst tests/%.c,build-tsan/tests/%,$(shell grep -l pthread_create $(TEST_SRCS))) \
              build-tsan/tests/malloc-threads
tsan: check-deps
	@$(MAKE) --no-print-directory B=build-tsan CFLAGS="-O1 -g" SANFLAGS="-fsanitize=thread" \
	  $(TSAN_TESTS)
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66 detect_deadlocks=0 $$TSAN_OPTIONS" B=build-tsan \
	  sh tests/run-tests.sh $(TSAN_TESTS)

$(B)/tests/malloc-threads: tests/malloc/test-threads.c tests/malloc/mtest.h tests/testutil.h \
  $(ITLIB) | $(B)/tests
	$(CC) $(TEST_CFLAGS) -Itests/malloc -fno-builtin -DMT_TSAN -o $@ $< $(TEST_LIBS)

# The drop-in malloc: its tests, and real programs under LD_PRELOAD.
check-malloc: check-deps
	@$(MAKE) --no-print-directory lib
	@B=$(B) sh tests/malloc/run.sh

# The long loops that make check samples, in full (MMALLOC_STRESS=1): every
# kill point, every injected OS failure with every error, every bit of the
# header flipped, every cut of a file, the 1 GiB file, forks beside threads
# for 15 s instead of 0.5 s; STRESS_KILLS random kills (default 5000; half
# as many on a checked heap); mmalloc_check beside working threads for
# STRESS_CHECK_SECONDS per heap kind (default 30); checking switched on
# beside working threads on 1000 heaps.
STRESS_KILLS ?= 5000
STRESS_CHECK_SECONDS ?= 30
STRESS_TESTS := $(B)/tests/test-recover $(B)/tests/test-killpoints $(B)/tests/test-check \
                $(B)/tests/test-files $(B)/tests/test-osfail $(B)/tests/test-fork \
                $(B)/tests/test-mmtool $(B)/tests/test-takeback
stress: check-deps
	@$(MAKE) --no-print-directory lib tools $(STRESS_TESTS) $(TEST_HELPERS)
	@MMALLOC_STRESS=1 MMALLOC_KILL_TRIALS=$(STRESS_KILLS) \
	  MMALLOC_CHECK_SECONDS=$(STRESS_CHECK_SECONDS) TEST_TIMEOUT=$${TEST_TIMEOUT:-3600} \
	  B=$(B) sh tests/run-tests.sh $(STRESS_TESTS)

# The benchmark suite against glibc and the peers (installs them if it can).
bench: lib $(ITLIB)
	sh bench/run.sh

# libFuzzer on the attach-and-use path; FUZZ_SECONDS (default 60).
fuzz:
	sh tests/fuzz/run.sh

# --- demo, docs, install -------------------------------------------------------

demo: lib
	@$(MAKE) --no-print-directory $(B)/examples/wordindex
	@sh examples/run-demo.sh $(B)/examples/wordindex

$(B)/examples/%: examples/%.c $(STLIB) | $(B)/examples
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude $(CPPFLAGS) $(WARN) $(LINK_FLAGS) -o $@ $< $(STLIB) \
	  -lpthread

info: $(B)/mmalloc.info
html: $(B)/mmalloc.html

$(B)/mmalloc.info: mmalloc.texi | $(B)/obj
	$(MAKEINFO) --no-split -o $@ $<

$(B)/mmalloc.html: mmalloc.texi | $(B)/obj
	$(MAKEINFO) --html --no-split -o $@ $<

# The pkg-config files are made anew by every install: they record the
# directories of that install, relative to ${prefix} where they lie below it.
PC_DIRS = 'prefix=$(prefix)' \
  'exec_prefix=$(patsubst $(prefix)%,$${prefix}%,$(exec_prefix))' \
  'libdir=$(patsubst $(exec_prefix)/%,$${exec_prefix}/%,$(libdir))' \
  'includedir=$(patsubst $(prefix)/%,$${prefix}/%,$(includedir))' ''

$(B)/mmalloc.pc: FORCE | $(B)/obj
	printf '%s\n' $(PC_DIRS) \
	  'Name: mmalloc' 'Description: mapped-memory allocator with persistent heaps' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -lmmalloc' 'Libs.private: -lpthread' \
	  'Cflags: -I$${includedir}' > $@

$(B)/mmalloc-malloc.pc: FORCE | $(B)/obj
	printf '%s\n' $(PC_DIRS) \
	  'Name: mmalloc-malloc' 'Description: mmalloc as the malloc of the whole process' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -lmmalloc-malloc' 'Libs.private: -lpthread' \
	  'Cflags: -I$${includedir}' > $@

# The manual pages: mmalloc(3) with a page for each function that leads to
# it (.so), and one for each tool.
MAN1 := $(wildcard man/man1/*.1)
MAN3 := $(wildcard man/man3/*.3)

FORCE:

install: lib tools $(B)/mmalloc.pc $(B)/mmalloc-malloc.pc
	$(INSTALL) -d $(DESTDIR)$(libdir) $(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir) \
	  $(DESTDIR)$(bindir) $(DESTDIR)$(man1dir) $(DESTDIR)$(man3dir)
	$(INSTALL) -m 644 include/mmalloc.h include/mmalloc-compat.h $(DESTDIR)$(includedir)/
	$(INSTALL) -m 755 $(SHLIB) $(DESTDIR)$(libdir)/
	ln -sf libmmalloc.so.$(VERSION) $(DESTDIR)$(libdir)/libmmalloc.so.1
	ln -sf libmmalloc.so.1 $(DESTDIR)$(libdir)/libmmalloc.so
	$(INSTALL) -m 644 $(STLIB) $(DESTDIR)$(libdir)/
	$(INSTALL) -m 755 $(MSHLIB) $(DESTDIR)$(libdir)/
	ln -sf libmmalloc-malloc.so.$(VERSION) $(DESTDIR)$(libdir)/libmmalloc-malloc.so.1
	ln -sf libmmalloc-malloc.so.1 $(DESTDIR)$(libdir)/libmmalloc-malloc.so
	$(INSTALL) -m 644 $(MSTLIB) $(DESTDIR)$(libdir)/
	$(INSTALL) -m 644 $(B)/mmalloc.pc $(B)/mmalloc-malloc.pc $(DESTDIR)$(pkgconfigdir)/
	$(INSTALL) -m 755 $(TOOLS) $(DESTDIR)$(bindir)/
	$(INSTALL) -m 644 $(MAN1) $(DESTDIR)$(man1dir)/
	$(INSTALL) -m 644 $(MAN3) $(DESTDIR)$(man3dir)/
	@if [ -f mmalloc.texi ] && command -v $(MAKEINFO) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory info && \
	  $(INSTALL) -d $(DESTDIR)$(infodir) && \
	  $(INSTALL) -m 644 $(B)/mmalloc.info $(DESTDIR)$(infodir)/ && \
	  (command -v install-info >/dev/null 2>&1 && [ -z "$(DESTDIR)" ] && \
	   install-info $(DESTDIR)$(infodir)/mmalloc.info $(DESTDIR)$(infodir)/dir || true); \
	else echo "makeinfo or mmalloc.texi missing: the info manual is not installed"; fi

uninstall:
	rm -f $(DESTDIR)$(includedir)/mmalloc.h $(DESTDIR)$(includedir)/mmalloc-compat.h
	rm -f $(DESTDIR)$(libdir)/libmmalloc.so.$(VERSION) $(DESTDIR)$(libdir)/libmmalloc.so.1 \
	  $(DESTDIR)$(libdir)/libmmalloc.so $(DESTDIR)$(libdir)/libmmalloc.a
	rm -f $(DESTDIR)$(libdir)/libmmalloc-malloc.so.$(VERSION) \
	  $(DESTDIR)$(libdir)/libmmalloc-malloc.so.1 $(DESTDIR)$(libdir)/libmmalloc-malloc.so \
	  $(DESTDIR)$(libdir)/libmmalloc-malloc.a
	rm -f $(DESTDIR)$(pkgconfigdir)/mmalloc.pc $(DESTDIR)$(pkgconfigdir)/mmalloc-malloc.pc \
	  $(addprefix $(DESTDIR)$(bindir)/,$(notdir $(TOOLS)))
	rm -f $(addprefix $(DESTDIR)$(man1dir)/,$(notdir $(MAN1))) \
	  $(addprefix $(DESTDIR)$(man3dir)/,$(notdir $(MAN3)))
	@if command -v install-info >/dev/null 2>&1 && [ -z "$(DESTDIR)" ]; then \
	  install-info --delete $(infodir)/mmalloc.info $(infodir)/dir || true; fi
	rm -f $(DESTDIR)$(infodir)/mmalloc.info

clean:
	rm -rf build build-asan build-ubsan build-tsan build-clang

help:
	@echo "make          build libmmalloc.so.1, libmmalloc.a, mmtrace-report and mmtool"
	@echo "make check    build and run the test suite (installs cmocka if it can)"
	@echo "make check-layers  the link graph of src/ against src/README's layers"
	@echo "make asan     the suite under AddressSanitizer;  make ubsan: UBSan"
	@echo "make tsan     the threaded tests under ThreadSanitizer (no report allowed)"
	@echo "make check-malloc  the drop-in malloc's tests and real programs"
	@echo "make check-vgasan  valgrind and ASan report misuse of mmalloc blocks"
	@echo "make demo     a word index kept in a heap file across two processes"
	@echo "make stress   the long loops make check samples, in full; thousands of random"
	@echo "              kill -9 trials (STRESS_KILLS=N), mmalloc_check beside threads"
	@echo "              (STRESS_CHECK_SECONDS=N)"
	@echo "make fuzz     libFuzzer on heap files for FUZZ_SECONDS (default 60)"
	@echo "make bench    the benchmark table against glibc and the peers"
	@echo "make info     the manual (also: make html)"
	@echo "make install  PREFIX, DESTDIR, libdir, includedir, bindir, mandir are honoured"
	@echo "CC, CPPFLAGS, CFLAGS, LDFLAGS are honoured (CI: make CC=clang B=build-clang check)"
