# Thin wrappers over scripts/.
.PHONY: run test generate check-generated fuzz bench

run:          ## Install what is missing, build quad, run `quad serve` (embedded PostgreSQL unless QUAD_DATABASE_URL)
	scripts/run.sh

test:         ## Everything CI runs
	scripts/test.sh

generate:     ## Regenerate committed Swift (and protoc-c) code from Protos/ and Tests/Protos/
	scripts/install-deps.sh
	scripts/generate.sh

check-generated:
	scripts/check-generated.sh

fuzz:         ## Fuzz each target for FUZZ_SECONDS (default 60)
	scripts/fuzz.sh $${FUZZ_SECONDS:-60}

bench:        ## Wire benchmark against swift-protobuf and libprotobuf-c (../shared/bench/wire)
	scripts/bench-wire.sh
