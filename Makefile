# Kaa platform - the single entry point. See README.md.
#
#   make run          install what is missing, build, start kaa-node standalone
#   make test         install what is missing, build, run every test suite
#   make bench        benchmarks (not tests), see bench/README.md
#
# Variants: the default build goes to build/; tests are built with
# ASan+UBSan into build/asan/ (make SAN=1 BUILD=build/asan ...).

BUILD ?= build
SAN ?=
CC ?= gcc
ifeq ($(CC),cc)
CC := gcc
endif

PKGS := libcurl yajl yaml-0.1 libwebsockets libuv grpc libprotobuf-c libpq libmongoc-1.0 sqlite3 openssl rdkafka
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
DEVICE_LIBS := $(shell pkg-config --libs libwebsockets libuv libprotobuf-c openssl 2>/dev/null)
CUNIT_LIBS := $(shell pkg-config --libs cunit 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifneq ($(CI),)
WARN += -Werror
endif
OPT := -O2
ifneq ($(SAN),)
OPT := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
CFLAGS ?=
CFLAGS += -std=gnu11 -g $(OPT) -pthread -fvisibility=hidden -D_GNU_SOURCE
CPPFLAGS += $(PKG_CFLAGS)
LDFLAGS += -pthread $(if $(SAN),-fsanitize=address$(comma)undefined)
comma := ,

GEN := $(BUILD)/gen
PROTOS := protos/etcd/kv.proto protos/etcd/rpc.proto protos/endpoint.proto protos/cluster.proto
PROTO_C := $(patsubst protos/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)

# ---- include paths: each part of the tree sees only what it may include --
# lib/ is split into layers (lib/README.md). A layer may include its own
# folder and the layers listed here, nothing above it; its objects compile
# against an include root that holds only those folders (symlinks under
# $(BUILD)/inc/lib-<layer>/), so a wrong-way include fails to compile.
LIB_LAYERS := base json proto coord store appender http auth
LAYER_DEPS_base :=
LAYER_DEPS_json := base
LAYER_DEPS_proto := base
LAYER_DEPS_coord := base json
LAYER_DEPS_store := base json proto
LAYER_DEPS_appender := base json proto store
LAYER_DEPS_http := base
LAYER_DEPS_auth := base json store
# The device SDK sees the device-frame codec, the error enum and the
# generated device protocol, nothing else of lib/ (never gRPC or server code).
SDK_LIB_HEADERS := proto/endpoint_codec.h proto/device_url.h base/error.h base/clock.h base/base64.h base/buf.h
INC := $(BUILD)/inc
INC_STAMP := $(INC)/.stamp

# services/ and operator/ use all of lib/ and never each other; tests see
# what the code they test sees.
SERVICES_INC := -Ilib -Iservices -I$(GEN)
OPERATOR_INC := -Ilib -Ioperator -I$(GEN)
SDK_INC := -I$(INC)/sdk -Isdk/include -Isdk/src
$(foreach l,$(LIB_LAYERS),$(eval $(BUILD)/obj/lib/$(l)/%.o: INCLUDES = -I$(INC)/lib-$(l) -I$(GEN)))
$(BUILD)/obj/services/%.o $(BUILD)/obj/bench/%.o: INCLUDES = $(SERVICES_INC)
$(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/tests/integration/%.o $(BUILD)/obj/tests/support/%.o $(BUILD)/obj/tests/tools/%.o: INCLUDES = $(SERVICES_INC) -Itests/support
$(BUILD)/obj/operator/%.o: INCLUDES = $(OPERATOR_INC)
$(BUILD)/obj/tests/operator/%.o $(BUILD)/obj/tests/k8s/%.o: INCLUDES = $(OPERATOR_INC) -Itests/support
$(BUILD)/obj/sdk/%.o $(BUILD)/obj/tests/sdk/%.o: INCLUDES = $(SDK_INC)
$(BUILD)/obj/gen/%.o: INCLUDES = -I$(GEN)

LIB_SRC := $(wildcard lib/*/*.c)
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C))
LIBKAA_CORE := $(BUILD)/lib/libkaacore.a

# kaa-node's modules except main.c also form libkaanode.a, which the unit
# tests link to test flag parsing and the like.
NODE_SRC := $(wildcard services/*.c services/*/*.c)
NODE_MAIN_OBJ := $(BUILD)/obj/services/node/main.o
NODE_OBJ := $(filter-out $(NODE_MAIN_OBJ),$(patsubst %.c,$(BUILD)/obj/%.o,$(NODE_SRC)))
LIBKAA_NODE := $(BUILD)/lib/libkaanode.a
# The operator's modules except main.c form libkaaoperator.a for its tests.
OPERATOR_SRC := $(wildcard operator/*.c)
OPERATOR_MAIN_OBJ := $(BUILD)/obj/operator/main.o
OPERATOR_OBJ := $(filter-out $(OPERATOR_MAIN_OBJ),$(patsubst %.c,$(BUILD)/obj/%.o,$(OPERATOR_SRC)))
LIBKAA_OPERATOR := $(BUILD)/lib/libkaaoperator.a

# libkaa, the device SDK: sdk/src plus the device-protocol codec objects
# (the same objects libkaacore holds; a device never links server code).
SDK_SRC := $(wildcard sdk/src/*.c)
SDK_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(SDK_SRC)) \
	$(BUILD)/obj/lib/proto/endpoint_codec.o $(BUILD)/obj/lib/proto/device_url.o \
	$(BUILD)/obj/lib/base/error.o \
	$(BUILD)/obj/lib/base/clock.o $(BUILD)/obj/lib/base/base64.o $(BUILD)/obj/lib/base/buf.o \
	$(BUILD)/obj/gen/endpoint.pb-c.o
LIBKAA_SDK := $(BUILD)/lib/libkaa.a
DEVICE_SRC := $(wildcard sdk/device/*.c)
DEVICE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(DEVICE_SRC))
SDK_EXAMPLE_SRC := $(wildcard sdk/examples/*.c)
SDK_EXAMPLES := $(patsubst sdk/examples/%.c,$(BUILD)/sdk-examples/%,$(SDK_EXAMPLE_SRC))

BINS := $(BUILD)/bin/kaa-node $(BUILD)/bin/kaa-operator $(BUILD)/bin/kaa-device

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRC))
SDK_TEST_SRC := $(wildcard tests/sdk/test_*.c)
SDK_TEST_BINS := $(patsubst tests/sdk/%.c,$(BUILD)/tests/%,$(SDK_TEST_SRC))
OPERATOR_TEST_SRC := $(wildcard tests/operator/test_*.c)
OPERATOR_TEST_BINS := $(patsubst tests/operator/%.c,$(BUILD)/tests/%,$(OPERATOR_TEST_SRC))
# tests/k8s: operator tests that need a Kubernetes API server; built here,
# run by e2e/test_*.sh suites that start one with the harness.
K8S_TEST_SRC := $(wildcard tests/k8s/test_*.c)
K8S_TEST_BINS := $(patsubst tests/k8s/%.c,$(BUILD)/tests/k8s/%,$(K8S_TEST_SRC))
TEST_SUPPORT := $(wildcard tests/support/*.c)
# tests/tools: helper programs the e2e suites run (e.g. a Kafka reader)
TEST_TOOL_SRC := $(wildcard tests/tools/*.c)
TEST_TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TEST_TOOL_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps tools run test unit e2e-k8s e2e-cluster fuzz fuzz-smoke format format-check layer-check \
	check-runtime-libs bench clean test-bins


.DEFAULT_GOAL := all
# Keep every intermediate file (generated sources, test objects): no
# rebuilds just because make deleted them.
.SECONDARY:
# V=1 shows full compiler command lines.
Q := $(if $(V),,@)

all: $(BINS)

deps:
	@scripts/install-deps.sh build test

tools: deps
	@e2e/tools/build.sh

# ---- code generation -------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: protos/%.proto
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --proto_path=protos --c_out=$(GEN) $<

# ---- compilation ------------------------------------------------------
# The include roots: one per lib layer, one for the SDK (symlinks, rebuilt
# when this Makefile changes).
$(INC_STAMP): Makefile
	$(Q)rm -rf $(INC) && mkdir -p $(INC)/sdk
	$(Q)$(foreach l,$(LIB_LAYERS),mkdir -p $(INC)/lib-$(l) && \
		$(foreach d,$(l) $(LAYER_DEPS_$(l)),ln -s $(CURDIR)/lib/$(d) $(INC)/lib-$(l)/$(d) &&) true;)
	$(Q)$(foreach h,$(SDK_LIB_HEADERS),mkdir -p $(INC)/sdk/$(dir $(h)) && ln -s $(CURDIR)/lib/$(h) $(INC)/sdk/$(h);)
	$(Q)ln -s $(abspath $(GEN))/endpoint.pb-c.h $(INC)/sdk/endpoint.pb-c.h
	$(Q)touch $@

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(INCLUDES) $(CPPFLAGS) $(CFLAGS) -w -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(PROTO_H) | $(INC_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(INCLUDES) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

$(LIBKAA_CORE): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBKAA_NODE): $(NODE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/kaa-node: $(NODE_MAIN_OBJ) $(LIBKAA_NODE) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(LIBKAA_OPERATOR): $(OPERATOR_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/kaa-operator: $(OPERATOR_MAIN_OBJ) $(LIBKAA_OPERATOR) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(LIBKAA_SDK): $(SDK_OBJ)
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# A device never links server code or gRPC: its own objects and libkaa.
$(BUILD)/bin/kaa-device: $(DEVICE_OBJ) $(LIBKAA_SDK)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(DEVICE_LIBS) -lm

$(BUILD)/sdk-examples/%: $(BUILD)/obj/sdk/examples/%.o $(LIBKAA_SDK)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(DEVICE_LIBS) -lm

TEST_SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SUPPORT))

$(UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_SUPPORT_OBJ) $(LIBKAA_NODE) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CUNIT_LIBS) -lm

$(INTEG_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TEST_SUPPORT_OBJ) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CUNIT_LIBS) -lm

$(SDK_TEST_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/sdk/%.o $(LIBKAA_SDK)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(DEVICE_LIBS) $(CUNIT_LIBS) -lm

# Allocation-failure injection: the SDK's own allocations go through the
# test's __wrap_* functions (tests/sdk/test_sdk_nomem.c).
$(BUILD)/tests/test_sdk_nomem: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup

$(OPERATOR_TEST_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/operator/%.o $(TEST_SUPPORT_OBJ) $(LIBKAA_OPERATOR) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CUNIT_LIBS) -lm

$(K8S_TEST_BINS): $(BUILD)/tests/k8s/%: $(BUILD)/obj/tests/k8s/%.o $(TEST_SUPPORT_OBJ) $(LIBKAA_OPERATOR) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CUNIT_LIBS) -lm

$(TEST_TOOL_BINS): $(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BENCH_BINS): $(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBKAA_NODE) $(LIBKAA_CORE)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

test-bins: $(BINS) $(UNIT_BINS) $(INTEG_BINS) $(SDK_TEST_BINS) $(OPERATOR_TEST_BINS) $(K8S_TEST_BINS) $(SDK_EXAMPLES) \
	$(TEST_TOOL_BINS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- running -----------------------------------------------------------
# The demo's platform admin; set your own for anything but a demo.
KAA_ADMIN_USER ?= admin
KAA_ADMIN_PASSWORD ?= kaa-demo-password
run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p data
	@echo "kaa-node standalone: control http://localhost:8080, bootstrap :8081, operations :9080"
	@echo "  admin credentials: $(KAA_ADMIN_USER) / $(KAA_ADMIN_PASSWORD)   (KAA_ADMIN_USER/KAA_ADMIN_PASSWORD)"
	@echo "  try: curl localhost:8080/readyz; curl localhost:8080/metrics   (Ctrl-C stops it)"
	exec env KAA_ADMIN_USER='$(KAA_ADMIN_USER)' KAA_ADMIN_PASSWORD='$(KAA_ADMIN_PASSWORD)' \
		$(BUILD)/bin/kaa-node --demo --host localhost

# ---- tests -------------------------------------------------------------
ASAN_BUILD := build/asan

FUZZ_SECONDS ?= 12

# Order: cheap checks first; the sanitizer build runs every suite; the plain
# build's binaries and tests also run under valgrind (e2e/test_valgrind.sh).
test: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory layer-check
	@$(MAKE) --no-print-directory -j2 all test-bins
	@$(MAKE) --no-print-directory check-runtime-libs
	@$(MAKE) --no-print-directory -j2 SAN=1 BUILD=$(ASAN_BUILD) test-bins
	@e2e/tools/build.sh
	@fuzz/build.sh --smoke $(FUZZ_SECONDS)
	@e2e/run-tests.sh $(ASAN_BUILD)

unit:
	@$(MAKE) --no-print-directory SAN=1 BUILD=$(ASAN_BUILD) test-bins
	@e2e/run-tests.sh --unit-only $(ASAN_BUILD)

# The Kubernetes suites alone (harness, CRD, operator), sanitizer build.
e2e-k8s: deps
	@$(MAKE) --no-print-directory -j2 SAN=1 BUILD=$(ASAN_BUILD) test-bins
	@e2e/tools/build.sh
	@KAA_TEST_FILTER=k8s e2e/run-tests.sh $(ASAN_BUILD)

# The multi-node suite alone (2 control, 3 operations, 1 bootstrap kaa-node
# on one etcd, PostgreSQL and FerretDB; e2e/test_cluster.sh), sanitizer build.
e2e-cluster: deps
	@$(MAKE) --no-print-directory -j2 SAN=1 BUILD=$(ASAN_BUILD) all test-bins
	@e2e/tools/build.sh
	@KAA_TEST_FILTER=test_cluster e2e/run-tests.sh $(ASAN_BUILD)

check-runtime-libs: all
	@scripts/check-runtime-libs.sh $(BINS)

fuzz:
	@fuzz/build.sh

fuzz-smoke:
	@fuzz/build.sh --smoke $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files -co --exclude-standard '*.c' '*.h' | grep -v '^build/')

format-check:
	@scripts/format-check.sh

# services/operations: includes go to the same layer or lower, no cycle.
layer-check:
	@scripts/check-layers.sh

bench: deps tools
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@bench/run.sh $(BUILD)

clean:
	rm -rf build
