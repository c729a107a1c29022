// Package testpoll waits, in tests, for a condition that comes true on its
// own: a reload applied, a connection closed, a counter reaching a value.
// It polls the condition to a deadline and, with Until, fails the test
// naming what it waited for. The deadline only bounds the wait for
// something that must happen, generously for a loaded -race run on two
// cores; no test asserts how long the wait took (the project's rule: no
// timed assertions).
//
// It is test support (internal/layering's testSupport): pkg/ tests may
// import it, non-test code may not. The standard library has no such
// helper (testing/synctest runs a bubble with a fake clock, which does not
// reach real sockets and processes); this is the one copy the test
// packages share instead of each writing its own loop.
package testpoll
