# sentry-dingtalk-relay. `make test` is what CI runs (.ci/run).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run build test fmt-check lint unit chart-test load load-storm load-redis fuzz golden clean

# Run the relay on its defaults (dry run: cards are logged).
run:
	$(GO) run ./cmd/sentry-dingtalk-relay

# The static binary the Dockerfile builds, and the load generator.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/sentry-dingtalk-relay ./cmd/sentry-dingtalk-relay
	$(GO) build -o bin/relay-load ./cmd/relay-load

# Everything: formatting, vet, tidy modules, unit and process tests with
# the race detector (including two relays on a real redis-server, which is
# installed from Debian when missing), the Helm chart tests.
test: lint unit chart-test

# gofmt walks the tree itself, so the check works outside a git checkout
# too; a file gofmt cannot parse fails it.
fmt-check:
	@out=$$(gofmt -l .) || exit 1; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint: fmt-check
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd charts/test && $(GO) vet ./... && $(GO) mod tidy -diff

unit:
	./scripts/ensure-redis.sh
	$(GO) test -race -count=1 ./...

chart-test:
	cd charts/test && $(GO) test -count=1 ./...

# The performance targets of the README, against the built binary.
load: build
	./bin/relay-load -rate 1000 -duration 30s -issues 50
	./bin/relay-load -rate 3000 -duration 10s -dingtalk-down

# 10,000 alerts in one minute to 3 robots.
load-storm: build
	./bin/relay-load -rate 167 -duration 60s -issues 200 -wait 5m

# Two relays sharing a local redis-server.
load-redis: build
	./scripts/ensure-redis.sh
	./bin/relay-load -replicas 2 -rate 1000 -duration 20s -issues 50 -wait 3m

# A short run of every fuzz target.
fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s ./formatter/sentry
	$(GO) test -run XXX -fuzz FuzzEscape -fuzztime 30s ./formatter
	$(GO) test -run XXX -fuzz FuzzCardIsInert -fuzztime 30s ./formatter
	$(GO) test -run XXX -fuzz FuzzCutBytes -fuzztime 30s ./formatter
	$(GO) test -run XXX -fuzz FuzzDecodeAlert -fuzztime 30s ./relay/queue
	$(GO) test -run XXX -fuzz FuzzDecodeDeliveryRecord -fuzztime 30s ./relay/queue
	$(GO) test -run XXX -fuzz FuzzReadSegment -fuzztime 30s ./relay/queue
	$(GO) test -run XXX -fuzz FuzzObserve -fuzztime 30s ./relay/watch
	$(GO) test -run XXX -fuzz FuzzEscapeMD -fuzztime 30s ./relay/feishu
	$(GO) test -run XXX -fuzz FuzzCard -fuzztime 30s ./relay/feishu
	$(GO) test -run XXX -fuzz FuzzEscapeMarkdown -fuzztime 30s ./relay/wecom
	$(GO) test -run XXX -fuzz FuzzCard -fuzztime 30s ./relay/wecom
	$(GO) test -run XXX -fuzz FuzzParseSMTPURL -fuzztime 30s ./relay/email
	$(GO) test -run XXX -fuzz FuzzHTMLIsInert -fuzztime 30s ./relay/email
	$(GO) test -run XXX -fuzz FuzzOpen -fuzztime 30s ./relay/action
	$(GO) test -run XXX -fuzz FuzzParseClaim -fuzztime 30s ./relay/action
	$(GO) test -run XXX -fuzz FuzzRetryAfter -fuzztime 30s ./relay/stdwebhook
	$(GO) test -run XXX -fuzz FuzzPayload -fuzztime 30s ./relay/stdwebhook

# Rewrite the golden cards after a deliberate change; review the diff.
golden:
	$(GO) test -count=1 ./formatter/sentry ./relay/action ./relay/email ./relay/feishu ./relay/stdwebhook ./relay/watch ./relay/wecom -update

clean:
	rm -rf bin data
