//go:build race

package test

// raceEnabled is true when the tests run with -race; TestMain then builds
// mptcpd-go with the race detector too, so the subprocess tests also look
// for data races in the command (which then exits 66).
const raceEnabled = true
