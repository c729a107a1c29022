#!/usr/bin/env bash
# Installs the Go tools the checks need, pinned, idempotently (into $(go env GOPATH)/bin).
set -euo pipefail
bin="$(go env GOPATH)/bin"
want() { # name module@version
  if ! "$bin/$1" --version 2>/dev/null | grep -q "${3:-.}"; then
    echo "installing $2"
    GOFLAGS= go install "$2"
  fi
}
want staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2 2026
want buf github.com/bufbuild/buf/cmd/buf@v1.75.0 1.75.0
want protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 v1.36.12
want protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 1.6.2
