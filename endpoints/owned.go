package endpoints

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// stateVersion is the format version of the state file; files with another
// version are refused rather than misread.
const stateVersion = 1

// OwnedEndpoint records one endpoint this package created.
type OwnedEndpoint struct {
	// Addr and Port identify the endpoint, as the kernel does.
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port,omitempty"`
	// ID is the id the kernel gave it. An endpoint with the same address
	// but another id was re-created by someone else and is not ours.
	ID uint8 `json:"id"`
	// Flags are the flags we set, to tell "someone changed them" from "the
	// policy changed them".
	Flags genl.Flags `json:"flags"`
	// Ifindex is the interface the endpoint is bound to (0: none) and Iface
	// its name when it was added, for status and logs.
	Ifindex int    `json:"ifindex,omitempty"`
	Iface   string `json:"iface,omitempty"`
}

// key identifies an endpoint the way the kernel does: address and port.
type key struct {
	addr netip.Addr
	port uint16
}

func keyOf(addr netip.Addr, port uint16) key { return key{normAddr(addr), port} }

// Owned is the set of endpoints this package created, keyed by address and
// port. The nil *Owned is an empty set for reading. It is not safe for
// concurrent use; the Reconciler keeps its own and hands out copies.
type Owned struct {
	m map[key]OwnedEndpoint
}

// NewOwned returns a set holding eps (a later entry with the same address
// and port replaces an earlier one).
func NewOwned(eps ...OwnedEndpoint) *Owned {
	o := &Owned{m: make(map[key]OwnedEndpoint, len(eps))}
	for _, e := range eps {
		o.Set(e)
	}
	return o
}

// Len returns the number of owned endpoints.
func (o *Owned) Len() int {
	if o == nil {
		return 0
	}
	return len(o.m)
}

// List returns the owned endpoints sorted by address and port.
func (o *Owned) List() []OwnedEndpoint {
	if o == nil {
		return nil
	}
	l := make([]OwnedEndpoint, 0, len(o.m))
	for _, e := range o.m {
		l = append(l, e)
	}
	slices.SortFunc(l, func(a, b OwnedEndpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return l
}

// Lookup returns the record for addr and port.
func (o *Owned) Lookup(addr netip.Addr, port uint16) (OwnedEndpoint, bool) {
	if o == nil {
		return OwnedEndpoint{}, false
	}
	e, ok := o.m[keyOf(addr, port)]
	return e, ok
}

// owns reports whether the kernel endpoint ep is ours: same address and
// port and the same id as recorded.
func (o *Owned) owns(ep genl.Endpoint) bool {
	e, ok := o.Lookup(ep.Addr, ep.Port)
	return ok && e.ID == ep.ID
}

// Set records e, replacing any record with the same address and port.
func (o *Owned) Set(e OwnedEndpoint) {
	if o.m == nil {
		o.m = make(map[key]OwnedEndpoint)
	}
	e.Addr = normAddr(e.Addr)
	o.m[keyOf(e.Addr, e.Port)] = e
}

// Delete forgets the record for addr and port.
func (o *Owned) Delete(addr netip.Addr, port uint16) {
	if o != nil {
		delete(o.m, keyOf(addr, port))
	}
}

// Clone returns an independent copy (never nil).
func (o *Owned) Clone() *Owned {
	c := &Owned{m: make(map[key]OwnedEndpoint, o.Len())}
	if o != nil {
		for k, e := range o.m {
			c.m[k] = e
		}
	}
	return c
}

// Equal reports whether both sets hold the same records.
func (o *Owned) Equal(p *Owned) bool {
	if o.Len() != p.Len() {
		return false
	}
	for _, e := range o.List() {
		if f, ok := p.Lookup(e.Addr, e.Port); !ok || f != e {
			return false
		}
	}
	return true
}

// prune drops the records that actual shows are not ours any more: the
// endpoint is gone, or its address is now held under another id (someone
// deleted ours and re-created it by hand). It returns the dropped records.
func (o *Owned) prune(actual []genl.Endpoint) []OwnedEndpoint {
	if o == nil {
		return nil
	}
	present := make(map[key]uint8, len(actual))
	for _, ep := range actual {
		present[keyOf(ep.Addr, ep.Port)] = ep.ID
	}
	var dropped []OwnedEndpoint
	for k, e := range o.m {
		if id, ok := present[k]; !ok || id != e.ID {
			dropped = append(dropped, e)
			delete(o.m, k)
		}
	}
	return dropped
}

// stateFile is the JSON form of the state file.
type stateFile struct {
	Version   int             `json:"version"`
	Endpoints []OwnedEndpoint `json:"endpoints"`
	// Pending are adds about to be made, written before them (IDs 0): a
	// crash between an add and the save after it must not leave an
	// endpoint that the next start takes for someone else's.
	Pending []OwnedEndpoint `json:"pending,omitempty"`
}

// ErrCorruptState is matched (errors.Is) by the error Load returns for a
// state file it cannot use.
var ErrCorruptState = errors.New("corrupt endpoint state file")

// Load reads the owned-endpoint state file at path. A missing file is an
// empty set, not an error. A file that cannot be parsed is refused with an
// error matching ErrCorruptState; see LoadOrEmpty.
func Load(path string) (*Owned, error) {
	o, _, err := loadState(path)
	return o, err
}

// loadState is Load that also returns the pending adds (see stateFile).
func loadState(path string) (*Owned, []OwnedEndpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewOwned(), nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read endpoint state file: %w", err)
	}
	var sf stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, nil, corrupt(path, err)
	}
	if sf.Version != stateVersion {
		return nil, nil, corrupt(path, fmt.Errorf("version %d, this program reads version %d", sf.Version, stateVersion))
	}
	o := NewOwned()
	for i, e := range sf.Endpoints {
		switch {
		case !e.Addr.IsValid():
			return nil, nil, corrupt(path, fmt.Errorf("endpoint %d has no address", i))
		case e.ID == 0:
			return nil, nil, corrupt(path, fmt.Errorf("endpoint %d (%s) has id 0", i, e.Addr))
		}
		if _, dup := o.Lookup(e.Addr, e.Port); dup {
			return nil, nil, corrupt(path, fmt.Errorf("endpoint %s port %d is listed twice", e.Addr, e.Port))
		}
		o.Set(e)
	}
	for i, e := range sf.Pending {
		if !e.Addr.IsValid() {
			return nil, nil, corrupt(path, fmt.Errorf("pending endpoint %d has no address", i))
		}
		sf.Pending[i].Addr, sf.Pending[i].ID = normAddr(e.Addr), 0
	}
	return o, sf.Pending, nil
}

func corrupt(path string, err error) error {
	return fmt.Errorf("%w %s: %w; move it away to start afresh (endpoints created before then will be treated as someone else's and left alone)",
		ErrCorruptState, path, err)
}

// LoadOrEmpty is Load for daemon start-up: on any error it still returns
// an empty set, and the error for logging. Starting empty is safe: endpoints
// we created earlier then look foreign and are left alone.
func LoadOrEmpty(path string) (*Owned, error) {
	o, _, err := loadStateOrEmpty(path)
	return o, err
}

// loadStateOrEmpty is LoadOrEmpty that also returns the pending adds.
func loadStateOrEmpty(path string) (*Owned, []OwnedEndpoint, error) {
	o, pending, err := loadState(path)
	if err != nil {
		return NewOwned(), nil, err
	}
	return o, pending, nil
}

// Save writes the set to path atomically: a reader (or a crash) sees the
// old file or the new one, never a mix. The directory is created with mode
// 0700 if missing; the file gets mode 0600.
func (o *Owned) Save(path string) error { return o.saveState(path, nil) }

// saveState is Save that also records adds about to be made.
func (o *Owned) saveState(path string, pending []OwnedEndpoint) error {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Endpoints: o.List(), Pending: pending}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode endpoint state: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save endpoint state: create directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save endpoint state: %w", err)
	}
	// Removing the temp file after a successful rename fails harmlessly.
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save endpoint state: write %s: %w", tmp.Name(), err)
	}
	// fsync before rename, or a crash could leave an empty file under the
	// final name.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save endpoint state: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save endpoint state: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save endpoint state: %w", err)
	}
	// Sync the directory so the rename itself survives a crash.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
