// Package test holds the integration tests of mptcpd-go: the genl client
// and the mptcpd-go command against the running kernel, each test in its
// own throw-away network namespaces (see test/harness).
//
// The tests need root and an MPTCP-capable kernel; without them they skip,
// unless MPTCPD_REQUIRE_KERNEL=1, which makes them fail instead.
package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cliBinary is the path of the mptcpd-go binary TestMain built, and
// cliBuildErr why building it failed. Both are set once, before any test
// runs, and only read afterwards.
var (
	cliBinary   string
	cliBuildErr error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mptcpd-go-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a temporary directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bin := os.Getenv(cliEnv); bin != "" {
		cliBinary = bin
	} else {
		cliBinary, cliBuildErr = buildCLI(dir)
	}
	return m.Run()
}

// cliEnv names an environment variable that, when set, gives the path of a
// prebuilt mptcpd-go to test instead of building ./cmd/mptcpd-go, e.g. an
// installed or cross-built binary.
const cliEnv = "MPTCPD_GO_BINARY"

// buildCLI builds ./cmd/mptcpd-go of the module (the parent of test/) into
// dir. A failure is not fatal here: only the tests that run the command
// fail, and the genl tests still run.
func buildCLI(dir string) (string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mptcpd-go")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/mptcpd-go")...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(cmd.Args[1:], " "), root, err, out)
	}
	return bin, nil
}

// cli returns the path of the mptcpd-go binary, failing the test when it
// could not be built.
func cli(t testing.TB) string {
	t.Helper()
	if cliBuildErr != nil {
		t.Fatalf("the mptcpd-go command is needed but could not be built: %v", cliBuildErr)
	}
	return cliBinary
}
