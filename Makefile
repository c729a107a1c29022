# segmesh developer targets. CI runs scripts/test.sh (which runs every fuzz
# target briefly); these run the long versions.
#
#   make fuzz               every fuzz target for FUZZTIME (default 2m) each
#   make fuzz FUZZTIME=30s
#   make race               unit tests under the race detector
#   make race-lab           the reliability and security lab tests under -race
#                           (root, Debian 12: brings the lab up)

FUZZTIME ?= 2m
GO ?= go

.PHONY: fuzz fuzz-list race race-lab

# fuzz-list prints "package target" for every FuzzXxx in a _test.go file.
fuzz-list:
	@git grep -l '^func Fuzz' -- '*_test.go' | while read -r f; do \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
			echo "./$$(dirname "$$f") $$t"; \
		done; \
	done

fuzz:
	@$(MAKE) -s fuzz-list | { n=0; while read -r pkg t; do \
		n=$$((n+1)); echo "== $$pkg $$t ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "$$pkg" || exit 1; \
	done; echo "fuzz: $$n targets, $(FUZZTIME) each, no failure"; }

race:
	$(GO) test -race -count=1 ./...

race-lab:
	$(GO) test -race -tags lab -count=1 -p 1 -timeout 15m ./test/...
