# twinlog — the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
DATA     ?= ./data
LISTEN   ?= 127.0.0.1:9721
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: build run test vet bench fuzz test-sdk wasm clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/twinlog ./cmd/twinlog

# Build and start a node on the embedded file log in $(DATA).
run: build
	./bin/twinlog serve --data $(DATA) --listen $(LISTEN)

# Vet and run every test, including the log conformance suites (memory, file,
# in-process NATS JetStream) and the kill -9 crash tests.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# Drive a node with the unmodified Azure Digital Twins SDK for JavaScript
# (needs Node.js and npm; part of `make test` when they are present).
test-sdk:
	$(GO) test -count=1 -v -run TestAzureSDK ./engine/node

# Build the example WebAssembly handlers into bin/wasm.
WASM_EXAMPLES := comfort average alert trivial
wasm:
	mkdir -p bin/wasm
	for h in $(WASM_EXAMPLES); do GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o bin/wasm/$$h.wasm ./wasm-handlers/examples/$$h || exit 1; done

# Run the benchmarks and write bench/RESULTS.md. The twin workload loads the
# standard graph at BUILDINGS buildings (1000 = the full 1,011,000 twins,
# which takes many minutes to load through the API).
BUILDINGS ?= 100
bench:
	$(GO) run ./bench/cmd/benchreport -out bench/RESULTS.md -buildings $(BUILDINGS)

# A short fuzzing pass over every decoder and parser (FUZZTIME each).
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	engine/event:FuzzDecode engine/bulk:FuzzDecode engine/twins:FuzzPatch \
	engine/eventlog/filelog:FuzzRecover engine/eventlog/filelog:FuzzIndex \
	engine/eventlog/natslog:FuzzSubjectToken engine/authn:FuzzParseJWKS engine/authn:FuzzVerify \
	schemas/dtdl:FuzzParse schemas/dtdl:FuzzParseDTMI schemas/dtdl:FuzzValidate \
	projections/query:FuzzParse projections/twingraph:FuzzLoadSnapshot projections/twingraph:FuzzDecodePatched \
	projections/twingraph:FuzzPatchedFast projections/twingraph:FuzzDecodeTelemetryBatch \
	projections/twingraph:FuzzNewTwinFast projections/twingraph:FuzzRelationshipFast \
	projections/twingraph:FuzzTelemetryFast projections/twingraph:FuzzParseSourceTime \
	projections/telemetry:FuzzScanObject projections/telemetry:FuzzDecodeTelemetry engine/jsonstr:FuzzAppend engine/jsonnum:FuzzParseFloat \
	schemas/dtdl:FuzzValidateNumber bench/httpload:FuzzReadResponse \
	processors/ingest:FuzzDecode processors/routes:FuzzParseFilter \
	processors/mqtt:FuzzParseTopic wasm-handlers/abi:FuzzBatch wasm-handlers/host:FuzzInstrument \
	wasm-handlers/host:FuzzParsePlainPatch wasm-handlers/handler:FuzzDecodeEvent wasm-handlers/handler:FuzzParseFloat
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$pkg $$fn"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) || exit 1; done

clean:
	rm -rf bin
