// Package ansi holds the terminal colour sequences (ANSI SGR) that the
// status summary and monitor use when their output is a terminal.
package ansi

// SGR sequences; Reset ends any of them.
const (
	Reset  = "\033[0m"
	Bold   = "\033[1m"
	Dim    = "\033[2m"
	Red    = "\033[31m"
	Green  = "\033[32m"
	Yellow = "\033[33m"
	Cyan   = "\033[36m"
)
