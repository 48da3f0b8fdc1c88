# ltc-deno: the whole job as file targets. `make pipeline` runs it on the embedded benchmark, `make test` runs the
# tests. Every target is an artifact; stages record params and input hashes in sidecars and refuse stale reuse.
SHELL := /bin/bash
.ONESHELL:
DENO := bin/deno
INSTALLED := node_modules/.package-lock.json

.PHONY: install test check bench pipeline clean

$(INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(INSTALLED)

install: $(INSTALLED)

test: $(INSTALLED)
	@set -o pipefail
	log=$$(mktemp)
	status=0
	NO_COLOR=1 $(DENO) test -A tests/ 2>&1 | tee "$$log" || status=$$?
	line=$$(grep -aE '^(ok|FAILED) \|' "$$log" | tail -n 1)
	passed=$$(echo "$$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
	failed=$$(echo "$$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
	rm -f "$$log"
	if [ -z "$$line" ]; then echo "0 passed, 1 failed"; exit 1; fi
	echo "$${passed:-0} passed, $${failed:-0} failed"
	exit $$status

check: $(INSTALLED)
	$(DENO) task check

bench: $(INSTALLED)
	$(DENO) task bench

clean:
	rm -rf data/synth results work_dir
