# echo suite: three echo servers, one per concurrency model, a client and a
# load generator.  One non-recursive Makefile; objects go to build/, programs
# to bin/.
#
#   make                    build everything into bin/
#   make test               build, then run the test runner (make check: same)
#   make bench              every server model side by side (bench/run.sh)
#   make bench-reference    the same, refreshing bench/results/ and README's table
#   make bench-syscalls     system calls per message, epoll against io_uring (perf)
#   make SANITIZE=address test    (address+undefined), thread, undefined
#   make WERROR=1           warnings are errors (CI)
#   make install PREFIX=/usr/local DESTDIR=

VERSION  = 1.0.0
PREFIX   = /usr/local
DESTDIR  =
CC       = cc
CFLAGS   = -O2 -g
LDFLAGS  =
SANITIZE =
WERROR   =

WARN = -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion \
       -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef \
       -Wcast-qual -Wpointer-arith -Wvla
ifneq ($(WERROR),)
WARN += -Werror
endif

ifeq ($(SANITIZE),address)
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else ifeq ($(SANITIZE),thread)
SAN = -fsanitize=thread -fno-omit-frame-pointer
else ifeq ($(SANITIZE),undefined)
SAN = -fsanitize=undefined -fno-sanitize-recover=all
else ifneq ($(SANITIZE),)
$(error SANITIZE must be address, thread or undefined)
endif

ALL_CPPFLAGS = -D_GNU_SOURCE -DVERSION='"$(VERSION)"' -I. $(CPPFLAGS)
ALL_CFLAGS   = -std=c11 $(WARN) $(SAN) $(CFLAGS)
# Bind every symbol at start (and keep the GOT read-only after): otherwise
# each of fork_server's children would resolve, on its first call, every
# library function its parent never called, and pay for it per connection.
ifeq ($(shell uname -s),Linux)
BIND_NOW = -Wl,-z,now -Wl,-z,relro
endif
ALL_LDFLAGS  = $(SAN) $(BIND_NOW) $(LDFLAGS)
LDLIBS       = -lpthread

BUILD = build
BINS  = bin/fork_server bin/thread_server bin/select_server bin/echo_client \
        bin/echo_bench


LIB_SRC = common/net.c common/io.c common/opt.c common/log.c common/sig.c \
          common/stats.c common/sys.c common/session.c common/server.c common/buf.c common/chat.c \
          common/proto.c common/kids.c \
          framing/frame.c framing/line.c
EV_SRC  = select_server/ev_loop.c select_server/ev_poll.c \
          select_server/ev_select.c select_server/ev_epoll.c select_server/workers.c \
          select_server/uring.c select_server/stash.c
# select_server's own modules beyond the event-loop backends
SEL_SRC = select_server/conn.c select_server/loop_uring.c
BENCH_SRC = bench/options.c bench/conn.c bench/mode_msg.c bench/mode_stream.c \
            bench/worker.c bench/report.c bench/srvcpu.c bench/hist.c
TEST_SRC = $(wildcard tests/*.c)

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
EV_OBJ   = $(EV_SRC:%.c=$(BUILD)/%.o)
SEL_OBJ  = $(SEL_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ = $(BENCH_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
ALL_OBJ  = $(LIB_OBJ) $(EV_OBJ) $(SEL_OBJ) $(TEST_OBJ) \
           $(BUILD)/fork_server/fork_server.o \
           $(BUILD)/thread_server/thread_server.o $(BUILD)/thread_server/pool.o $(BUILD)/thread_server/talk.o \
           $(BUILD)/select_server/select_server.o \
           $(BUILD)/client/echo_client.o $(BUILD)/bench/echo_bench.o \
           $(BENCH_OBJ)

all: $(BINS)

# Rebuild everything when the compiler or flags change (SANITIZE=... runs).
FLAGS_NOW = $(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS)
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

$(BUILD)/%.o: %.c $(BUILD)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libecho.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

bin/fork_server: $(BUILD)/fork_server/fork_server.o $(BUILD)/libecho.a
bin/thread_server: $(BUILD)/thread_server/thread_server.o $(BUILD)/thread_server/pool.o $(BUILD)/thread_server/talk.o \
                   $(BUILD)/libecho.a
bin/select_server: $(BUILD)/select_server/select_server.o $(SEL_OBJ) $(EV_OBJ) $(BUILD)/libecho.a
bin/echo_client: $(BUILD)/client/echo_client.o $(BUILD)/libecho.a
bin/echo_bench: $(BUILD)/bench/echo_bench.o $(BENCH_OBJ) $(BUILD)/libecho.a
$(BINS):
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# tests/bench.c tests echo_bench's pure parts (options, histogram, srvcpu)
$(BUILD)/tests/run: $(TEST_OBJ) $(EV_OBJ) $(BENCH_OBJ) $(BUILD)/libecho.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# The fault tests' LD_PRELOAD library: built without sanitizers, it only
# wraps fork() and pthread_create().
$(BUILD)/tests/fault_shim.so: tests/shim/fault_shim.c $(BUILD)/flags
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -fPIC -shared -o $@ $<

# TEST_ARGS: e.g. TEST_ARGS='-k thread_server' runs only matching cases.
test check: all $(BUILD)/tests/run $(BUILD)/tests/fault_shim.so
	TEST_SANITIZE=$(SANITIZE) $(BUILD)/tests/run $(TEST_ARGS)

# make bench: every model side by side, results in build/bench/ (ignored:
# a run leaves the tree clean).  make bench-reference: the same into
# bench/results/ (the reference run the README shows, committed on
# purpose) and its table into README.md.
bench: all
	bash bench/run.sh --out $(BUILD)/bench $(BENCH_ARGS)

bench-reference: all
	bash bench/run.sh --out bench/results $(BENCH_ARGS)
	awk -f bench/readme.awk bench/results/latest.md README.md > $(BUILD)/README.md.new
	mv $(BUILD)/README.md.new README.md

# make bench-syscalls: select_server's system calls per message at 500
# clients, readiness (epoll) against completion (uring), counted by perf.
bench-syscalls: all
	bash bench/syscalls.sh

# make fuzz: libFuzzer on the framing decoders, FUZZ_SECONDS each (clang and
# its runtime, Debian's libclang-rt-dev); grown corpus and crashes go to
# build/fuzz/.  make lint: cppcheck and clang-tidy; any finding fails.
FUZZ_SECONDS ?= 60

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

lint:
	bash tests/lint.sh

install: all
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	cp -f $(BINS) $(DESTDIR)$(PREFIX)/bin/
	cp -f man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

uninstall:
	rm -f $(BINS:bin/%=$(DESTDIR)$(PREFIX)/bin/%)
	rm -f $(BINS:bin/%=$(DESTDIR)$(PREFIX)/share/man/man1/%.1)

clean:
	rm -rf $(BUILD) bin

FORCE:
.PHONY: all test check bench bench-reference bench-syscalls fuzz lint install uninstall clean FORCE

-include $(ALL_OBJ:.o=.d)
