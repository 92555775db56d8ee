package endpoints

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

func TestOwnedRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "sub", "owned.json")
	o := NewOwned(
		OwnedEndpoint{Addr: ip("10.0.2.1"), ID: 2, Flags: sub | backup, Ifindex: 3, Iface: "eth2"},
		OwnedEndpoint{Addr: ip("fd00:1::1"), ID: 4, Flags: sub, Ifindex: 2, Iface: "eth1"},
		OwnedEndpoint{Addr: ip("10.0.1.1"), Port: 8080, ID: 1, Flags: sig},
	)
	if err := o.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o.List(), got.List(), equateAddrs); diff != "" {
		t.Errorf("round trip (-saved +loaded):\n%s", diff)
	}

	// The directory is private: the file tells which endpoints to delete.
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

func TestOwnedSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "owned.json")
	if err := NewOwned(OwnedEndpoint{Addr: ip("10.0.1.1"), ID: 1}).Save(path); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewOwned(OwnedEndpoint{Addr: ip("10.0.2.1"), ID: 2}).Save(path); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A new inode means rename over the old file, not rewriting it in
	// place (which a crash could leave half-written).
	if os.SameFile(before, after) {
		t.Error("Save rewrote the file in place; want a new file renamed over it")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only owned.json (no temp files left)", names)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Lookup(ip("10.0.2.1"), 0); !ok || got.Len() != 1 {
		t.Errorf("loaded %+v, want only 10.0.2.1", got.List())
	}

	// A save that fails at the rename (the target is a directory) leaves
	// no temp file behind.
	target := filepath.Join(dir, "taken")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := NewOwned().Save(target); err == nil {
		t.Error("Save over a directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("directory holds %d entries after a failed save, want 2 (owned.json, taken)", len(entries))
	}
}

func TestOwnedLoadMissing(t *testing.T) {
	o, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if err != nil || o.Len() != 0 {
		t.Errorf("Load(missing) = %+v, %v; want empty, nil", o.List(), err)
	}
}

func TestOwnedLoadCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"not json":       "{\"version\": 1, \"endpoints\": [",
		"other version":  `{"version": 7, "endpoints": []}`,
		"bad address":    `{"version": 1, "endpoints": [{"addr": "10.0.0.300", "id": 1}]}`,
		"no address":     `{"version": 1, "endpoints": [{"id": 1}]}`,
		"id 0":           `{"version": 1, "endpoints": [{"addr": "10.0.0.1", "id": 0}]}`,
		"duplicate":      `{"version": 1, "endpoints": [{"addr": "10.0.0.1", "id": 1}, {"addr": "10.0.0.1", "id": 2}]}`,
		"unknown fields": `{"version": 1, "endpoints": [], "extra": true}`,
		"empty file":     ``,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "owned.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := Load(path)
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("Load = %v, %v; want ErrCorruptState", o, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it away") {
				t.Errorf("error %q should name the file and say what to do", err)
			}
			o, err = LoadOrEmpty(path)
			if err == nil || o == nil || o.Len() != 0 {
				t.Errorf("LoadOrEmpty = %v, %v; want an empty set and the error", o, err)
			}
		})
	}
}

func TestOwnedPrune(t *testing.T) {
	o := ownedOf(kep(1, "10.0.1.1", sub, 0), kep(2, "10.0.2.1", sub, 0), kep(3, "10.0.3.1", sub, 0))
	dropped := o.prune(
		[]genl.Endpoint{kep(1, "10.0.1.1", sub|backup, 0), kep(3, "10.0.9.9", sub, 0), kep(7, "10.0.2.1", sub, 0)},
	)
	var got []string
	for _, e := range o.List() {
		got = append(got, e.Addr.String())
	}
	if diff := cmp.Diff([]string{"10.0.1.1"}, got); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if len(dropped) != 2 {
		t.Errorf("dropped %+v, want 10.0.2.1 (re-created with id 7) and 10.0.3.1 (id 3 reused)", dropped)
	}
}
