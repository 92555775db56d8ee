package policy

import (
	"embed"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Defaults of the main file.
const (
	// DefaultPath is the main file read when no --config is given.
	DefaultPath = "/etc/mptcpd-go/mptcpd-go.toml"
	// DefaultPolicyDir holds the interface files, relative to the main
	// file's directory.
	DefaultPolicyDir = "interfaces.d"
	// DefaultControlSocket is the Unix socket the CLI talks to the daemon
	// on.
	DefaultControlSocket = "/run/mptcpd-go/control.sock"
	// DefaultStateFileName is the state file's name, in the directory of
	// the control socket unless state_file says otherwise: two daemons with
	// two sockets then never share a state file.
	DefaultStateFileName = "state.json"
)

// EmbeddedPrefix starts the File of the built-in default files, in
// Interface.File and in errors.
const EmbeddedPrefix = "embedded:"

// defaults holds the built-in main and interface files. An embed.FS cannot
// be written to, so it is no mutable state.
//
//go:embed defaults/mptcpd-go.toml defaults/99-default.toml
var defaults embed.FS

// Mode says which path manager the daemon drives.
type Mode string

// The modes of the main file's mode key.
const (
	// ModeKernel keeps the in-kernel path manager's endpoints and limits.
	ModeKernel Mode = "kernel"
	// ModeUserspace runs the userspace path manager.
	ModeUserspace Mode = "userspace"
	// ModeAuto picks one of the others from what the kernel supports.
	ModeAuto Mode = "auto"
)

// StopAction says what happens to the endpoints the daemon added when it
// stops.
type StopAction string

// The values of the main file's on_stop key.
const (
	// StopRemove removes the endpoints the daemon added (the default).
	StopRemove StopAction = "remove"
	// StopKeep leaves them in the kernel.
	StopKeep StopAction = "keep"
)

// Limit is one of the in-kernel path manager's limits: a number, or Auto
// to derive it from the endpoints.
type Limit struct {
	// Auto derives the limit from the endpoints; Value is then 0.
	Auto bool
	// Value is the limit, 0..genl.MaxLimit, when not Auto.
	Value uint32
}

// Resolve returns the limit's value, with derived (what the daemon computed
// from the endpoints) standing in for Auto, capped at genl.MaxLimit.
func (l Limit) Resolve(derived int) uint32 {
	if !l.Auto {
		return l.Value
	}
	return uint32(max(0, min(derived, genl.MaxLimit)))
}

// String returns "auto" or the number.
func (l Limit) String() string {
	if l.Auto {
		return "auto"
	}
	return strconv.FormatUint(uint64(l.Value), 10)
}

// Config is a loaded and validated policy: the main file's settings and the
// interface files in the order they apply.
type Config struct {
	// Path is the main file; DefaultPath if that was missing and the
	// built-in main file applies (Embedded).
	Path string
	// Mode is the path manager to drive.
	Mode Mode
	// Subflows and AddAddrAccepted are the in-kernel path manager's
	// limits.
	Subflows, AddAddrAccepted Limit
	// PolicyDir holds the interface files, with the main file's directory
	// joined to a relative policy_dir.
	PolicyDir string
	// PolicyDirMissing is set when PolicyDir does not exist: then there
	// are no interface files (a plan should say so).
	PolicyDirMissing bool
	// ControlSocket is the daemon's Unix socket.
	ControlSocket string
	// StateFile records the endpoints the daemon added.
	StateFile string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is console or json.
	LogFormat string
	// OnStop says what happens to the daemon's endpoints when it stops.
	OnStop StopAction
	// Preset is the userspace path manager's built-in policy, one of
	// Presets(); DefaultPreset unless the main file says otherwise.
	Preset string
	// MaxSubflows is the most extra subflows per connection for the
	// userspace path manager; 0 when not set (the path manager's default).
	MaxSubflows int
	// Rules are the [[rule]] tables in the order written; the first that
	// matches a connection applies.
	Rules []ConnRule
	// Proxies are the [[proxy]] tables: userspace data-path proxies the
	// daemon runs.
	Proxies []Proxy
	// Interfaces are the interface files in lexical order; the first that
	// matches an interface applies to it (see Match).
	Interfaces []*Interface
	// Embedded is set when the main file did not exist and the built-in
	// one applies.
	Embedded bool
	// MetricsListen is the ADDRESS:PORT of the Prometheus endpoint, with
	// DefaultMetricsHost when metrics_listen gave only a port; "" (the
	// default) serves no metrics.
	MetricsListen string
}

// maxSocketPath is the longest path a Unix socket can have: sun_path is
// 108 bytes with the terminating NUL.
const maxSocketPath = 107

// Load loads the policy: the main file at path (DefaultPath if path is ""),
// then the interface files in its policy_dir.
//
// With path "" and no file at DefaultPath, the built-in defaults apply (see
// the package documentation); with an explicit path that does not exist,
// Load fails. Pass "" when --config was not given, not DefaultPath.
//
// All problems found, in all files, are returned together as Errors.
func Load(path string) (*Config, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, Errors{{File: path, Msg: "cannot make the path absolute: " + err.Error(), Err: err}}
		}
		path = abs
	}
	return LoadFS(os.DirFS("/"), path)
}

// LoadFS is Load reading from fsys instead of the root file system, for
// tests. Paths may be absolute ("/etc/…", looked up as "etc/…" in fsys,
// which is how os.DirFS("/") and fstest.MapFS name files) or relative; the
// errors and the Config show them as given.
func LoadFS(fsys fs.FS, name string) (*Config, error) {
	explicit := name != ""
	if !explicit {
		name = DefaultPath
	}
	name = path.Clean(name)

	file := name
	data, err := fs.ReadFile(fsys, fsName(name))
	switch {
	case err == nil:
	case !explicit && errors.Is(err, fs.ErrNotExist):
		file = EmbeddedPrefix + "mptcpd-go.toml"
		data, err = defaults.ReadFile("defaults/mptcpd-go.toml")
		if err != nil {
			return nil, Errors{readError(file, err)} // cannot happen: it is embedded
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, Errors{{File: name, Msg: "no such file; create it, or leave out --config to use " + DefaultPath + " or the built-in defaults", Err: err}}
	default:
		return nil, Errors{readError(name, err)}
	}

	cfg, errs, dirPos := parseMain(file, data, path.Dir(name))
	cfg.Path = name
	cfg.Embedded = file != name
	if cfg.PolicyDir != "" {
		errs = append(errs, cfg.readPolicyDir(fsys, file, dirPos)...)
	}
	if cfg.Embedded && len(cfg.Interfaces) == 0 && len(errs) == 0 {
		file := EmbeddedPrefix + "99-default.toml"
		data, err := defaults.ReadFile("defaults/99-default.toml")
		if err != nil {
			return nil, Errors{readError(file, err)} // cannot happen: it is embedded
		}
		iface, ierrs := parseInterface(file, data)
		if len(ierrs) > 0 {
			return nil, ierrs // cannot happen: TestLoadEmbeddedDefault loads it
		}
		cfg.Interfaces = append(cfg.Interfaces, iface)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// fsName turns a path as the user wrote it into an fs.FS name.
func fsName(name string) string {
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return "."
	}
	return name
}

// readError describes a file that cannot be read.
func readError(file string, err error) *Error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error() // the path is already in File
	}
	return &Error{File: file, Msg: "cannot read it: " + msg, Err: err}
}

// readPolicyDir parses the *.toml files of c.PolicyDir, in lexical order,
// into c.Interfaces. mainFile and dirPos are where policy_dir was set (the
// zero pos for the default), to which a directory that cannot be read is
// attributed.
func (c *Config) readPolicyDir(fsys fs.FS, mainFile string, dirPos pos) Errors {
	entries, err := fs.ReadDir(fsys, fsName(c.PolicyDir))
	if errors.Is(err, fs.ErrNotExist) {
		c.PolicyDirMissing = true
		return nil
	}
	if err != nil {
		e := readError(c.PolicyDir, err)
		if dirPos.line > 0 {
			e.File, e.Line, e.Col = mainFile, dirPos.line, dirPos.col
			e.Msg = "policy_dir: cannot read " + c.PolicyDir + ": " + strings.TrimPrefix(e.Msg, "cannot read it: ") + "; point it at a directory"
		}
		return Errors{e}
	}
	var errs Errors
	// fs.ReadDir sorts by name, which is the order the files apply in.
	for _, ent := range entries {
		if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".toml") {
			continue
		}
		file := path.Join(c.PolicyDir, ent.Name())
		data, err := fs.ReadFile(fsys, fsName(file))
		if err != nil {
			errs = append(errs, readError(file, err))
			continue
		}
		iface, ierrs := parseInterface(file, data)
		errs = append(errs, ierrs...)
		if iface != nil {
			c.Interfaces = append(c.Interfaces, iface)
		}
	}
	return errs
}

// rawMain is the main file as written, before validation; nil fields were
// not set.
type rawMain struct {
	mode, policyDir, controlSocket, stateFile, logLevel, logFormat, onStop *strVal
	subflows, addAddrAccepted                                              *entry
	preset, metricsListen                                                  *strVal
	maxSubflows                                                            *intVal
	rules                                                                  []rawRule
	proxies                                                                []rawProxy
}

// parseMain parses and validates the main file; dir is the directory that
// a relative policy_dir is relative to. It returns the Config without its
// interfaces, the problems, and where policy_dir was set.
func parseMain(file string, data []byte, dir string) (*Config, Errors, pos) {
	root, errs, ok := parseTOML(file, data)
	d := &decoder{file: file, errs: errs}
	var r rawMain
	if ok {
		r = d.decodeMain(root)
	}
	cfg := d.validateMain(&r, dir)
	if !ok {
		cfg.PolicyDir = "" // unknown: do not read it
	}
	sortErrors(d.errs)
	var dirPos pos
	if r.policyDir != nil {
		dirPos = r.policyDir.pos
	}
	return cfg, d.errs, dirPos
}

// decodeMain takes the main file's keys out of root, checking their types.
func (d *decoder) decodeMain(root *table) rawMain {
	var r rawMain
	d.topKeys = []string{"mode", "limits", "policy_dir", "control_socket", "state_file", "log_level", "log_format", "on_stop", "preset", "max_subflows", "rule", "proxy", "metrics_listen"}
	str := func(key string, dst **strVal) field {
		return field{key, func(e *entry) { *dst = d.str(e) }}
	}
	limits := field{"limits", func(e *entry) {
		t := d.table(e)
		if t == nil {
			return
		}
		d.fields(t, "[limits]", nil,
			field{"subflows", func(e *entry) { r.subflows = e }},
			field{"add_addr_accepted", func(e *entry) { r.addAddrAccepted = e }},
		)
	}}
	d.fields(root, "", nil,
		str("mode", &r.mode),
		limits,
		str("policy_dir", &r.policyDir),
		str("control_socket", &r.controlSocket),
		str("state_file", &r.stateFile),
		str("log_level", &r.logLevel),
		str("log_format", &r.logFormat),
		str("on_stop", &r.onStop),
		str("preset", &r.preset),
		field{"max_subflows", func(e *entry) {
			r.maxSubflows = d.integer(e, "an integer 1.."+strconv.Itoa(MaxSubflowsLimit))
		}},
		field{"rule", func(e *entry) { r.rules = d.rules(e) }},
		field{"proxy", func(e *entry) { r.proxies = d.proxies(e) }},
		str("metrics_listen", &r.metricsListen),
	)
	return r
}

// validateMain checks the values of r and returns them as a Config, with
// defaults for what r lacks. A PolicyDir of "" means policy_dir was
// invalid.
func (d *decoder) validateMain(r *rawMain, dir string) *Config {
	c := &Config{
		Mode:            ModeKernel,
		Subflows:        Limit{Auto: true},
		AddAddrAccepted: Limit{Auto: true},
		PolicyDir:       path.Join(dir, DefaultPolicyDir),
		ControlSocket:   DefaultControlSocket,
		LogLevel:        "info",
		LogFormat:       "console",
		OnStop:          StopRemove,
		Preset:          DefaultPreset,
	}
	if v := d.oneOf("mode", r.mode, []string{string(ModeKernel), string(ModeUserspace), string(ModeAuto)}, "mode"); v != "" {
		c.Mode = Mode(v)
	}
	c.Subflows = d.limit(r.subflows, c.Subflows)
	c.AddAddrAccepted = d.limit(r.addAddrAccepted, c.AddAddrAccepted)
	if v := r.policyDir; v != nil {
		if v.s == "" {
			d.errorf(v.pos, "policy_dir: empty; give a directory such as %s (relative to %s)", quote(DefaultPolicyDir), dir)
			c.PolicyDir = ""
		} else {
			// path.Join cleans, and keeps an absolute policy_dir absolute.
			c.PolicyDir = path.Join(dir, v.s)
			if path.IsAbs(v.s) {
				c.PolicyDir = path.Clean(v.s)
			}
		}
	}
	if v := r.controlSocket; v != nil && d.absPath("control_socket", v, DefaultControlSocket) {
		c.ControlSocket = path.Clean(v.s)
		if len(c.ControlSocket) > maxSocketPath {
			d.errorf(v.pos, "control_socket: the path is %d bytes long, but a Unix socket path can have at most %d; use a shorter one", len(c.ControlSocket), maxSocketPath)
		}
	}
	c.StateFile = path.Join(path.Dir(c.ControlSocket), DefaultStateFileName)
	if v := r.stateFile; v != nil && d.absPath("state_file", v, "/run/mptcpd-go/state.json") {
		c.StateFile = path.Clean(v.s)
	}
	if v := d.oneOf("log_level", r.logLevel, []string{"debug", "info", "warn", "error"}, "log level"); v != "" {
		c.LogLevel = v
	}
	if v := d.oneOf("log_format", r.logFormat, []string{"console", "json"}, "log format"); v != "" {
		c.LogFormat = v
	}
	if v := d.oneOf("on_stop", r.onStop, []string{string(StopRemove), string(StopKeep)}, "stop action"); v != "" {
		c.OnStop = StopAction(v)
	}
	if r.metricsListen != nil {
		c.MetricsListen = d.metricsListen(r.metricsListen)
	}
	d.validateUserspace(r, c)
	d.validateProxies(r.proxies, c)
	return c
}

// oneOf returns v's string if it is one of options, else reports it and
// returns "". It returns "" for a nil v.
func (d *decoder) oneOf(key string, v *strVal, options []string, what string) string {
	if v == nil {
		return ""
	}
	if slices.Contains(options, v.s) {
		return v.s
	}
	hint := "use " + quotedOrList(options)
	if best := closest(v.s, options); best != "" {
		hint = "did you mean " + quote(best) + "?"
	}
	d.errorf(v.pos, "%s: %s is not a %s; %s", key, quote(v.s), what, hint)
	return ""
}

// absPath reports v unless it is an absolute path.
func (d *decoder) absPath(key string, v *strVal, example string) bool {
	if path.IsAbs(v.s) {
		return true
	}
	d.errorf(v.pos, "%s: %s is not an absolute path; write it in full, like %s", key, quote(v.s), quote(example))
	return false
}

// limit validates a limit: an integer 0..genl.MaxLimit or "auto". It
// returns def if e is nil or invalid.
func (d *decoder) limit(e *entry, def Limit) Limit {
	if e == nil {
		return def
	}
	want := `an integer 0..` + strconv.Itoa(genl.MaxLimit) + ` or "auto"`
	switch e.val.kind {
	case unstable.String:
		if e.val.text == "auto" {
			return Limit{Auto: true}
		}
		d.errorf(e.val.pos, "%s: %s is not a number; want %s", e.key, quote(e.val.text), want)
	case unstable.Integer:
		v := d.integer(e, want)
		switch {
		case v == nil:
		case v.n < 0:
			d.errorf(v.pos, "%s: %d is negative; want %s", e.key, v.n, want)
		case v.n > genl.MaxLimit:
			d.errorf(v.pos, "%s: %d is above %d, the most the kernel accepts; use 0..%d or \"auto\"", e.key, v.n, genl.MaxLimit, genl.MaxLimit)
		default:
			return Limit{Value: uint32(v.n)}
		}
	default:
		d.wrongType(e, want)
	}
	return def
}

// sortErrors orders one file's errors by position; they are found in the
// order the schema is walked, not the order they were written.
func sortErrors(errs Errors) {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
}
