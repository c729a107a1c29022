#!/usr/bin/env bash
# segmesh's test command (README.md): static checks, the unit tests under the
# race detector (the Kubernetes manifests are built and strictly validated by
# deploy/k8s's Go test), the lab tests against the real Samba AD / Apache / PKI
# lab, every benchmark once, every fuzz target briefly, and the container
# image. CI runs exactly this.
#
#   SEGMESH_SKIP_LAB=1   skip the lab tests (no root, no packages)
#   SEGMESH_SKIP_IMAGE=1 skip building and running the container image (podman)
#   SEGMESH_FUZZTIME=5s  time per fuzz target
#   SEGMESH_SKIP_PACKAGE=1 skip the packages and the Windows build (root, dpkg, rpm, lintian)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$bad" ]; then echo "not gofmt'ed:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...
go vet -tags lab ./...

step "staticcheck"
staticcheck ./...
staticcheck -tags lab ./...

step "buf lint and generated code"
buf lint
buf generate
if ! git diff --quiet -- proto || [ -n "$(git ls-files --others --exclude-standard proto)" ]; then
  echo "generated Go differs from the checked-in code: run 'buf generate' and commit"
  git status --short proto
  exit 1
fi

step "alert rules: promtool check rules and test rules (deploy/monitoring)"
promtool check rules deploy/monitoring/alerts.yml
(cd deploy/monitoring && promtool test rules alerts_test.yml)

step "unit tests (race detector)"
go test -race -count=1 ./...

step "bench/cmd/fastproxy, its own module (fasthttp stays out of segmesh's go.mod): vet, staticcheck, tests"
(cd bench/cmd/fastproxy && go vet ./... && staticcheck ./... && go test -race -count=1 ./...)

# The packages (.ci/package.sh: linux amd64/arm64 binaries, .deb/.rpm,
# dpkg -i, systemd-analyze verify, lintian, config check, purge; rpm -i,
# rpm -V, rpm -e) and the Windows binary (.ci/windows.sh: segmesh.exe, run
# under wine only where a wine that starts Go programs exists) build while
# the lab tests, which mostly wait on Samba, run: the two share the 2 cores.
package_pid=""
if [ "${SEGMESH_SKIP_PACKAGE:-}" != 1 ]; then
  step "packages: started in the background (log /tmp/segmesh-package.log)"
  { bash .ci/package.sh && bash .ci/windows.sh; } >/tmp/segmesh-package.log 2>&1 &
  package_pid=$!
fi

if [ "${SEGMESH_SKIP_LAB:-}" != 1 ]; then
  step "lab tests (Samba AD DC, Apache mod_auth_gssapi, PKI on 127.0.0.x)"
  go test -tags lab -count=1 -p 1 -timeout 20m ./...
fi

if [ -n "$package_pid" ]; then
  step "packages: waiting for .ci/package.sh"
  if ! wait "$package_pid"; then cat /tmp/segmesh-package.log; echo "packages failed"; exit 1; fi
  cat /tmp/segmesh-package.log
fi

step "benchmarks, once each"
go test -run '^$' -bench . -benchtime=1x -count=1 ./...

step "fuzz targets, ${SEGMESH_FUZZTIME:-5s} each"
for f in $(git grep -l '^func Fuzz' -- '*_test.go'); do
  pkg="./$(dirname "$f")"
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "-- $pkg $t"
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "${SEGMESH_FUZZTIME:-5s}" "$pkg" >/tmp/segmesh-fuzz.log 2>&1; then
      # Go's fuzzer can end a short run with a bare "context deadline exceeded"
      # when -fuzztime expires mid-input (no crash, no failing input written).
      # Only a run that found something fails the build.
      if grep -q 'context deadline exceeded' /tmp/segmesh-fuzz.log && ! grep -q 'Failing input written to' /tmp/segmesh-fuzz.log; then
        echo "   (ended by the fuzz time limit mid-input; no failing input)"
      else
        cat /tmp/segmesh-fuzz.log; exit 1
      fi
    fi
  done
done

if [ "${SEGMESH_SKIP_LAB:-}" != 1 ]; then
  step "lab down leaves nothing running (last: it stops the lab)"
  SEGMESH_LAB_TEST_DOWN=1 go test -tags lab -count=1 -run '^TestDown$' ./internal/labenv
fi

if [ "${SEGMESH_SKIP_IMAGE:-}" != 1 ]; then
  step "container image (FROM scratch) built offline and run with no network"
  bash .ci/image.sh
fi

step "done"
