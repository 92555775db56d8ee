// Command mptcpd-go manages the Linux Multipath TCP path manager. Its
// endpoint, limits and monitor commands speak iproute2's "ip mptcp",
// byte for byte; see internal/cli for the grammar.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/mptcpd-go/mptcpd-go/internal/cli"
)

func main() {
	env := cli.DefaultEnv(os.Stdin, os.Stdout, os.Stderr, version())
	env.StopSignals = func() (context.Context, context.CancelFunc) {
		return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	}
	os.Exit(cli.Run(context.Background(), env, os.Args[1:]))
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
