// Package layering checks the import direction the code's folders promise
// (cmd → internal → services → pkg; no role imports another; pkg imports
// no services or internal, tests included) and the size of source files,
// from `go list` (the go command's own view of the packages, build tags and
// test files). It is written here because no kept library states segmesh's
// own rules; the graph comes from the go command rather than a parser of
// ours. Its test runs it on the repository in CI.
package layering
