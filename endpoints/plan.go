package endpoints

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// Want is one endpoint the policy wants in the kernel.
type Want struct {
	// Iface is the interface the address belongs to, for reports and logs;
	// the Reconciler also finds the link by this name when Ifindex is 0.
	Iface string
	// Ifindex binds the endpoint's subflows to an interface (the kernel's
	// "dev"); 0 for none.
	Ifindex int
	// Addr and Port identify the endpoint. Port is for signal endpoints; 0
	// for none.
	Addr netip.Addr
	Port uint16
	// Flags are the endpoint flags (FlagImplicit is the kernel's and is
	// ignored here).
	Flags genl.Flags
	// Priority decides who gets the kernel's few endpoint slots: higher
	// first.
	Priority int
}

// String returns "eth1 192.0.2.1" (and " port N" when set), the way reports
// name a want.
func (w Want) String() string {
	return describe(w.Iface, w.Addr, w.Port)
}

func describe(iface string, addr netip.Addr, port uint16) string {
	s := addr.String()
	if iface != "" {
		s = iface + " " + s
	}
	if port != 0 {
		s += fmt.Sprintf(" port %d", port)
	}
	return s
}

// OpKind says what an Op does.
type OpKind int

// The kinds of Op.
const (
	// OpAdd adds Op.Endpoint; the kernel chooses the id.
	OpAdd OpKind = iota + 1
	// OpDelete deletes the endpoint with id Op.Endpoint.ID.
	OpDelete
	// OpSetFlags sets the backup and fullmesh flags of the endpoint with id
	// Op.Endpoint.ID to those in Op.Endpoint.Flags.
	OpSetFlags
)

// String returns "add", "delete" or "set-flags".
func (k OpKind) String() string {
	switch k {
	case OpAdd:
		return "add"
	case OpDelete:
		return "delete"
	case OpSetFlags:
		return "set-flags"
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Op is one change to the kernel's endpoints.
type Op struct {
	Kind OpKind
	// Endpoint is the endpoint to add (ID 0), or the kernel's endpoint to
	// delete, or the kernel's endpoint with the flags to set.
	Endpoint genl.Endpoint
	// Iface names the interface, for logs.
	Iface string
	// Reason says why, in plain words, for logs.
	Reason string
}

// Report explains a plan: what is left alone and why. It is what `status`
// shows.
type Report struct {
	// Foreign are the endpoints someone else created; they are never
	// touched but take slots.
	Foreign []Foreign
	// Capped are wants left out (or removed) because the kernel's slots
	// went to higher-priority ones.
	Capped []Capped
	// Skipped are wants that cannot be applied at all (no address,
	// duplicate, interface down, ...).
	Skipped []Skipped
	// Summary is one line for humans.
	Summary string
}

// Foreign is an endpoint this package did not create.
type Foreign struct {
	Endpoint genl.Endpoint
	// WantedOn is the interface of a want for the same address, if the
	// policy wants it: the want is then left to whoever manages it.
	WantedOn string
	// Note explains, e.g. "10.0.0.5 on eth1 is managed by someone else (id
	// 7); left alone".
	Note string
}

// Capped is a want that did not get an endpoint slot.
type Capped struct {
	Want Want
	// Note explains, e.g. "eth3 192.0.2.9 not added: the kernel allows at
	// most 8 endpoints and 8 are in use (2 foreign)".
	Note string
}

// Skipped is a want that was not applied for a reason other than the cap.
type Skipped struct {
	Want Want
	Note string
}

// mutableFlags are the flags the kernel changes in place (set_flags); any
// other difference needs delete and add.
const mutableFlags = genl.FlagBackup | genl.FlagFullmesh

// Plan computes the operations that turn the kernel's endpoints (actual, a
// dump) into want, touching only endpoints recorded in owned, and explains
// the outcome. max is the kernel's endpoint limit (genl.MaxEndpoints when
// <= 0). It is a pure function; it does not modify owned.
//
// The decisions:
//   - An endpoint is ours when owned has its address and port with the same
//     kernel id; everything else is foreign and left alone, also when a
//     want names its address (reported). The kernel's implicit endpoints are
//     the exception: adding the address replaces them in place.
//   - Wants compete for max slots minus the foreign ones by Priority, then
//     interface name, address and port.
//   - Backup and fullmesh changes are set in place; other flag or ifindex
//     changes delete and re-add. Identical endpoints are left as they are.
//   - Owned endpoints missing from the kernel are added again; owned
//     endpoints no longer wanted (or capped) are deleted.
//
// Deletes are slow in the kernel (an RCU grace period each) and adds cheap,
// so the order is: set-flags, adds that fit in free slots, replacements
// (delete then add of the same address), then each remaining add right
// after a delete that frees its slot, then the other deletes.
func Plan(want []Want, actual []genl.Endpoint, owned *Owned, max int) (ops []Op, rep Report) {
	if max <= 0 {
		max = genl.MaxEndpoints
	}

	inKernel := make(map[key]genl.Endpoint, len(actual))
	ours := make(map[key]genl.Endpoint, len(actual))
	for _, ep := range actual {
		k := keyOf(ep.Addr, ep.Port)
		inKernel[k] = ep
		if owned.owns(ep) {
			ours[k] = ep
		}
	}

	ws := sortWants(want, &rep)

	// Choose the wants that get a slot, highest priority first.
	type choice struct {
		w        Want
		takeover bool // replaces a kernel-created implicit endpoint
	}
	var (
		chosen     []choice
		chosenKeys = make(map[key]bool, len(ws))
		wantedBy   = make(map[key]string) // foreign endpoints a want names
		capped     []Want
		inUse      = len(actual) - len(ours) // foreign slots stay taken
		takeovers  = 0
	)
	for _, w := range ws {
		k := keyOf(w.Addr, w.Port)
		if ep, ok := inKernel[k]; ok {
			if _, mine := ours[k]; !mine {
				if ep.Flags&genl.FlagImplicit != 0 {
					chosen = append(chosen, choice{w: w, takeover: true})
					chosenKeys[k] = true
					takeovers++
					continue
				}
				wantedBy[k] = w.Iface
				continue
			}
		}
		if inUse >= max {
			capped = append(capped, w)
			continue
		}
		inUse++
		chosen = append(chosen, choice{w: w})
		chosenKeys[k] = true
	}
	foreignAfter := len(actual) - len(ours) - takeovers

	// Ops for the chosen wants.
	var setFlags, adds, replaces, lateAdds []Op
	free := max - len(actual)
	for _, c := range chosen {
		w := c.w
		k := keyOf(w.Addr, w.Port)
		add := Op{Kind: OpAdd, Iface: w.Iface, Endpoint: genl.Endpoint{
			Addr: w.Addr, Port: w.Port, Flags: w.Flags, Ifindex: w.Ifindex,
		}}
		if c.takeover {
			add.Reason = fmt.Sprintf("replaces the implicit endpoint the kernel created (id %d)", inKernel[k].ID)
			adds = append(adds, add)
			continue
		}
		cur, mine := ours[k]
		if !mine {
			add.Reason = "new"
			if rec, ok := owned.Lookup(w.Addr, w.Port); ok {
				add.Reason = fmt.Sprintf("re-added: our endpoint (id %d) was deleted outside mptcpd-go", rec.ID)
			}
			if free > 0 {
				free--
				adds = append(adds, add)
			} else {
				lateAdds = append(lateAdds, add)
			}
			continue
		}
		curFlags := cur.Flags &^ genl.FlagImplicit
		if curFlags == w.Flags && cur.Ifindex == w.Ifindex {
			continue
		}
		rec, _ := owned.Lookup(w.Addr, w.Port)
		changedBy := "the policy changed"
		if rec.Flags == w.Flags && rec.Ifindex == w.Ifindex {
			changedBy = "someone else changed"
		}
		if cur.Ifindex == w.Ifindex && (curFlags^w.Flags)&^mutableFlags == 0 {
			ep := cur
			ep.Flags = w.Flags
			setFlags = append(setFlags, Op{Kind: OpSetFlags, Endpoint: ep, Iface: w.Iface,
				Reason: fmt.Sprintf("%s the flags from %q to %q", changedBy, curFlags, w.Flags)})
			continue
		}
		what := fmt.Sprintf("flags from %q to %q", curFlags, w.Flags)
		if cur.Ifindex != w.Ifindex {
			what = fmt.Sprintf("interface index from %d to %d", cur.Ifindex, w.Ifindex)
		}
		del := Op{Kind: OpDelete, Endpoint: cur, Iface: w.Iface,
			Reason: fmt.Sprintf("%s the %s, which needs delete and add", changedBy, what)}
		add.Reason = "re-added with the new settings"
		replaces = append(replaces, del, add)
	}

	// Our endpoints that are no longer chosen.
	cappedKeys := make(map[key]bool, len(capped))
	for _, w := range capped {
		cappedKeys[keyOf(w.Addr, w.Port)] = true
	}
	var deletes []Op
	for k, ep := range ours {
		if chosenKeys[k] {
			continue
		}
		rec, _ := owned.Lookup(ep.Addr, ep.Port)
		reason := "no longer wanted"
		if cappedKeys[k] {
			reason = "capped: higher-priority endpoints need the slot"
		}
		deletes = append(deletes, Op{Kind: OpDelete, Endpoint: ep, Iface: rec.Iface, Reason: reason})
	}
	slices.SortFunc(deletes, func(a, b Op) int { return cmp.Compare(a.Endpoint.ID, b.Endpoint.ID) })

	ops = append(ops, setFlags...)
	ops = append(ops, adds...)
	ops = append(ops, replaces...)
	for _, add := range lateAdds {
		// Selection kept the final count within max, so there is a delete
		// for every add that did not fit; the guard is for safety only.
		if len(deletes) > 0 {
			ops = append(ops, deletes[0])
			deletes = deletes[1:]
		}
		ops = append(ops, add)
	}
	ops = append(ops, deletes...)

	// The report.
	for _, ep := range actual {
		k := keyOf(ep.Addr, ep.Port)
		if _, mine := ours[k]; mine || chosenKeys[k] {
			continue
		}
		f := Foreign{Endpoint: ep, WantedOn: wantedBy[k]}
		switch {
		case hasKey(wantedBy, k):
			on := ""
			if f.WantedOn != "" {
				on = " on " + f.WantedOn
			}
			f.Note = fmt.Sprintf("%s%s is managed by someone else (id %d); left alone", addrPort(ep.Addr, ep.Port), on, ep.ID)
		case ep.Flags&genl.FlagImplicit != 0:
			f.Note = fmt.Sprintf("%s (id %d) is an implicit endpoint the kernel created; left alone", addrPort(ep.Addr, ep.Port), ep.ID)
		default:
			f.Note = fmt.Sprintf("%s (id %d) was not created by mptcpd-go; left alone", addrPort(ep.Addr, ep.Port), ep.ID)
		}
		rep.Foreign = append(rep.Foreign, f)
	}
	slices.SortFunc(rep.Foreign, func(a, b Foreign) int { return cmp.Compare(a.Endpoint.ID, b.Endpoint.ID) })

	for _, w := range capped {
		verb := "not added"
		if _, mine := ours[keyOf(w.Addr, w.Port)]; mine {
			verb = "removed"
		}
		rep.Capped = append(rep.Capped, Capped{Want: w, Note: fmt.Sprintf(
			"%s %s: the kernel allows at most %d endpoints and %d are in use (%d foreign)",
			w, verb, max, inUse, foreignAfter)})
	}

	rep.Summary = summary(ops, inUse, max, foreignAfter, len(rep.Capped), len(wantedBy))
	return ops, rep
}

func hasKey(m map[key]string, k key) bool {
	_, ok := m[k]
	return ok
}

func addrPort(a netip.Addr, port uint16) string { return describe("", a, port) }

// sortWants returns the valid wants, normalized, in priority order with
// duplicates (same address and port) removed; the rest go to rep.Skipped.
func sortWants(want []Want, rep *Report) []Want {
	ws := make([]Want, 0, len(want))
	for _, w := range want {
		if !w.Addr.IsValid() {
			rep.Skipped = append(rep.Skipped, Skipped{Want: w, Note: fmt.Sprintf("%s: no address; ignored", cmp.Or(w.Iface, "want"))})
			continue
		}
		w.Addr = normAddr(w.Addr)
		w.Flags &^= genl.FlagImplicit
		ws = append(ws, w)
	}
	slices.SortStableFunc(ws, func(a, b Want) int {
		return cmp.Or(
			cmp.Compare(b.Priority, a.Priority),
			strings.Compare(a.Iface, b.Iface),
			a.Addr.Compare(b.Addr),
			cmp.Compare(a.Port, b.Port),
		)
	})
	seen := make(map[key]Want, len(ws))
	out := ws[:0]
	for _, w := range ws {
		k := keyOf(w.Addr, w.Port)
		if first, dup := seen[k]; dup {
			rep.Skipped = append(rep.Skipped, Skipped{Want: w, Note: fmt.Sprintf(
				"%s: the same address is wanted on %s with higher precedence; ignored", w, cmp.Or(first.Iface, "another interface"))})
			continue
		}
		seen[k] = w
		out = append(out, w)
	}
	return out
}

// summary is the one-line description of a plan.
func summary(ops []Op, inUse, max, foreign, capped, leftToOthers int) string {
	var n [OpSetFlags + 1]int
	for _, op := range ops {
		n[op.Kind]++
	}
	var b strings.Builder
	if len(ops) == 0 {
		b.WriteString("in sync")
	} else {
		var parts []string
		if n[OpAdd] > 0 {
			parts = append(parts, fmt.Sprintf("%d to add", n[OpAdd]))
		}
		if n[OpSetFlags] > 0 {
			parts = append(parts, fmt.Sprintf("%d to change", n[OpSetFlags]))
		}
		if n[OpDelete] > 0 {
			parts = append(parts, fmt.Sprintf("%d to delete", n[OpDelete]))
		}
		b.WriteString(strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "; %d of %d endpoints in use (%d ours, %d foreign)", inUse, max, inUse-foreign, foreign)
	if capped > 0 {
		fmt.Fprintf(&b, "; %d capped", capped)
	}
	if leftToOthers > 0 {
		fmt.Fprintf(&b, "; %d wanted but managed by someone else", leftToOthers)
	}
	return b.String()
}
