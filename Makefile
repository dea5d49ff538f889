# keyraft: the two commands that matter are `make dev` and `make test`.
GO        ?= go
BIN       := bin/keyraft
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 10s

.PHONY: all build dev test unit race fuzz vet fmt bench clean docker-image chaos chaos-docker

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/keyraft

## dev: build and start a local 3-node cluster (Ctrl-C stops it)
dev: build
	./$(BIN) dev

## test: everything CI runs: vet, formatting, unit, integration and end-to-end tests
## (the e2e tests in cmd/keyraft build the binary and drive `keyraft dev` with the
## AWS SDK and the AWS CLI) under -race, then a short fuzz run of the API decoder
test: vet fmt race fuzz

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

race:
	$(GO) test -race -count=1 -timeout 20m ./...

unit:
	$(GO) test -count=1 ./...

# Each fuzz target runs for FUZZTIME (go test allows one -fuzz target per run).
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./api/
	$(GO) test -run='^$$' -fuzz=FuzzVerifyGrantToken -fuzztime=$(FUZZTIME) ./engine/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./policy/

## bench: GenerateMac/VerifyMac through one node's full HTTP stack against a bare
## net/http handler (ratio reported), and CreateKey latency on a 3-node cluster
bench:
	$(GO) test -run='^$$' -bench=. -benchtime=3s ./agent/

clean:
	rm -rf bin

## chaos: a long randomized robustness campaign (CHAOS_RUNS schedules, process level)
CHAOS_RUNS ?= 20
chaos: build
	./$(BIN) chaos -runs $(CHAOS_RUNS)

## chaos-docker: the Compose cluster under container-level faults (docker kill/start,
## pause/unpause, network disconnect/connect, plus the nodes' fault API for bridges,
## one-way cuts and apply lag) with the runner's checks, and the
## scripted container test; needs a Docker engine (also part of make test)
chaos-docker:
	$(GO) test -count=1 -v -run 'TestCompose' ./deploy/

## docker-image: the container image keyraft:latest, FROM scratch around the static binary
docker-image: build
	@ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && \
	cp $(BIN) "$$ctx/keyraft" && mkdir "$$ctx/data" "$$ctx/secrets" && \
	docker build -q -f deploy/Dockerfile -t keyraft:latest "$$ctx"
