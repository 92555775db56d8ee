package pcap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// maxEvents bounds the per-connection ADD_ADDR, REMOVE_ADDR and reset
// lists, so a misbehaving peer cannot grow them without limit.
const maxEvents = 1024

// pruneLag is how far below the peer's data ACK sent ranges are kept. A
// capture taken at the receiver can show a reinjected copy arriving after
// the data ACK for the original, so ranges are not forgotten at once.
const pruneLag = 4 << 20

// Values of the hmac fields in the summary.
const (
	HMACValid      = "valid"
	HMACInvalid    = "invalid"
	HMACUnverified = "unverified" // keys unknown or unsupported version
)

// Summary is the result of analysing a capture.
type Summary struct {
	// Connections lists the MPTCP connections whose SYN carried
	// MP_CAPABLE and was not refused at the handshake, in order of
	// their first SYN. Connections that fell back later are included
	// with Fallback set.
	Connections []ConnSummary `json:"connections"`
	// FallbackConnections lists every connection that fell back to
	// plain TCP: at the handshake (these appear only here) or later.
	FallbackConnections []FallbackSummary `json:"fallback_connections"`
}

// ConnSummary describes one MPTCP connection.
type ConnSummary struct {
	Client      string `json:"client"` // initial subflow's initiator, addr:port
	Server      string `json:"server"`
	Version     uint8  `json:"version"`
	ClientKey   string `json:"client_key"` // 16 hex digits, empty when unseen
	ServerKey   string `json:"server_key"`
	ClientToken string `json:"client_token"` // 8 hex digits, empty when unseen
	ServerToken string `json:"server_token"`
	// Established is set once the server answered with MP_CAPABLE.
	Established bool `json:"established"`
	// Checksum reports whether DSS checksums were negotiated (either
	// side set flag A).
	Checksum         bool                `json:"checksum"`
	Subflows         []SubflowSummary    `json:"subflows"`
	AddAddr          []AddAddrSummary    `json:"add_addr"`
	RemoveAddr       []RemoveAddrSummary `json:"remove_addr"`
	Reinjections     int                 `json:"reinjections"`
	ReinjectedBytes  uint64              `json:"reinjected_bytes"`
	Fallback         bool                `json:"fallback"`
	FallbackReason   string              `json:"fallback_reason,omitempty"`
	HMACVerified     int                 `json:"hmac_verified"`
	HMACFailures     int                 `json:"hmac_failures"`
	HMACUnverified   int                 `json:"hmac_unverified"`
	ChecksumVerified int                 `json:"checksum_verified"`
	ChecksumFailures int                 `json:"checksum_failures"`
	// ChecksumUnverified counts checksummed mappings that could not be
	// checked: part of their payload is missing from the capture.
	ChecksumUnverified int            `json:"checksum_unverified"`
	MPFail             int            `json:"mp_fail"`
	Fastclose          bool           `json:"fastclose"`
	OptionErrors       int            `json:"option_errors"`
	Resets             []ResetSummary `json:"resets"`
	First              time.Time      `json:"first"`
	Last               time.Time      `json:"last"`
}

// SubflowSummary describes one subflow; Src is the side that sent its SYN.
type SubflowSummary struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	AddrID uint8  `json:"addr_id"` // initiator's address ID (0 for the initial subflow)
	Backup bool   `json:"backup"`
	Join   bool   `json:"join"`
	// HMAC is the result of checking both MP_JOIN HMACs ("valid",
	// "invalid", "unverified"); empty for the initial subflow.
	HMAC string `json:"hmac,omitempty"`
	// DataBytes counts data-level bytes mapped by DSS on this subflow
	// in both directions, each DSN byte once per subflow.
	DataBytes uint64    `json:"data_bytes"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
}

// AddAddrSummary is one ADD_ADDR seen on the connection.
type AddAddrSummary struct {
	From   string    `json:"from"` // "client" or "server"
	AddrID uint8     `json:"addr_id"`
	Addr   string    `json:"addr"`
	Port   uint16    `json:"port,omitempty"`
	Echo   bool      `json:"echo"`
	HMAC   string    `json:"hmac,omitempty"` // empty for echoes
	Time   time.Time `json:"time"`
}

// RemoveAddrSummary is one REMOVE_ADDR seen on the connection.
type RemoveAddrSummary struct {
	From    string    `json:"from"`
	AddrIDs []int     `json:"addr_ids"` // int, not uint8, so JSON is not base64
	Time    time.Time `json:"time"`
}

// ResetSummary is one MP_TCPRST seen on the connection, or the first
// plain RST (without MP_TCPRST) on one of its subflows.
type ResetSummary struct {
	Src string `json:"src"`
	Dst string `json:"dst"`
	// Plain is set for a RST without MP_TCPRST; Reason is then 0.
	Plain      bool      `json:"plain,omitempty"`
	Reason     uint8     `json:"reason"`
	ReasonName string    `json:"reason_name"`
	Transient  bool      `json:"transient"`
	Time       time.Time `json:"time"`
}

// FallbackSummary is a connection that fell back to plain TCP.
type FallbackSummary struct {
	Client string    `json:"client"`
	Server string    `json:"server"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// flowKey identifies a subflow regardless of direction.
type flowKey struct{ a, b netip.AddrPort }

func makeFlowKey(x, y netip.AddrPort) flowKey {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return flowKey{x, y}
}

// direction is the data-level state of one direction of a connection.
type direction struct {
	ref     uint64 // highest DSN seen, to widen 32-bit DSNs
	haveRef bool
	sent    dsnSet
}

// widen turns a 32-bit DSN or data ACK into 64 bits, choosing the value
// nearest to the direction's reference point.
func (d *direction) widen(v uint64, is64 bool) uint64 {
	if is64 || !d.haveRef {
		return v
	}
	c := d.ref&^0xffffffff | v&0xffffffff
	switch {
	case c > d.ref && c-d.ref > 1<<31 && c >= 1<<32:
		c -= 1 << 32
	case c < d.ref && d.ref-c > 1<<31:
		c += 1 << 32
	}
	return c
}

func (d *direction) advance(v uint64) {
	if !d.haveRef || v > d.ref {
		d.ref, d.haveRef = v, true
	}
}

type addAddrEvent struct {
	fromClient bool
	opt        AddAddr
	time       time.Time
}

type conn struct {
	version                  uint8
	client, server           netip.AddrPort
	clientKey, serverKey     uint64
	haveClient, haveServer   bool
	clientFlags, serverFlags uint8
	established              bool
	dropped                  bool // fell back at the handshake
	fallback                 bool
	fallbackReason           string
	fallbackTime             time.Time
	subflows                 []*subflow
	open                     int          // subflows not yet closed
	dirs                     [2]direction // 0: client to server, 1: server to client
	addAddr                  []addAddrEvent
	removeAddr               []RemoveAddrSummary
	resets                   []ResetSummary
	reinjections             int
	reinjectedBytes          uint64
	csumOK, csumBad          int
	csumUnverified           int
	mpFail                   int
	fastclose                bool
	optErrors                int
	estEvent, closedEvent    bool // ESTABLISHED and CLOSED were reported
	first, last              time.Time
}

func (c *conn) checksum() bool {
	return (c.clientFlags|c.serverFlags)&CapableFlagA != 0
}

// canVerify reports whether the join HMACs can be checked: both keys are
// known (SHA-256 for version 1, SHA-1 for version 0).
func (c *conn) canVerify() bool {
	return c.haveClient && c.haveServer && c.version <= 1
}

// fallback marks c as fallen back to TCP, once.
func (a *Analyzer) fallback(c *conn, reason string, t time.Time) {
	if c.fallback {
		return
	}
	c.fallback, c.fallbackReason, c.fallbackTime = true, reason, t
	if e := a.newEvent(c, EventFallback, t); e != nil {
		e.setAddrs(c.client, c.server)
		e.Reason = reason
		a.emit(e)
	}
}

// csumMap is a DSS mapping whose checksum is being verified: its payload
// may arrive in several segments, so the one's complement sum is
// accumulated here. One per subflow direction keeps memory bounded.
type csumMap struct {
	active bool
	seen   bool   // the fields below describe a mapping, active or finished
	dsn    uint64 // the mapping, to recognise it when repeated
	ssn    uint32
	next   uint32 // relative subflow sequence number of the next byte to sum
	need   uint32 // payload bytes the mapping covers
	done   uint32 // payload bytes summed so far
	sum    uint64
	want   uint16
}

type subflow struct {
	conn              *conn
	index             int
	join              bool
	initiator         netip.AddrPort
	responder         netip.AddrPort
	initiatorIsClient bool
	isnI, isnR        uint32
	synAck            bool // SYN/ACK seen
	addrID            uint8
	remID             uint8 // responder's address ID (join SYN/ACK)
	backup            bool
	nonceA, nonceB    uint32
	thmac             uint64
	haveTHMAC         bool
	hmac              []byte
	joinRefused       bool
	joined            bool // join third ACK seen and reported
	finI, finR        bool // FIN seen from the initiator, the responder
	closed            bool
	csum              [2]csumMap // 0: from the initiator
	dataBytes         uint64
	first, last       time.Time
}

// fromClient reports whether a packet with source src travels from the
// connection's client side to its server side.
func (s *subflow) fromClient(src netip.AddrPort) bool {
	return (src == s.initiator) == s.initiatorIsClient
}

// Analyzer accumulates per-connection MPTCP state from TCP segments fed to
// it in capture order, and optionally reports events as it goes (see
// HandleEvents). Its memory grows with the number of connections and
// subflows, not with the number of packets. It is not safe for concurrent
// use.
type Analyzer struct {
	flows     map[flowKey]*subflow
	tokens    map[uint32]*conn
	conns     []*conn
	onEvent   func(Event)
	start     time.Time // first packet, for Event.Rel
	haveStart bool
	// Scratch space reused for every packet, so that the common case
	// (DSS options only) does not allocate.
	raw    [][]byte
	opts   []Option
	dssBuf [4]DSS
}

// NewAnalyzer returns an empty Analyzer.
func NewAnalyzer() *Analyzer {
	return &Analyzer{flows: map[flowKey]*subflow{}, tokens: map[uint32]*conn{}}
}

// decode fills a.opts with the packet's MPTCP options and returns how
// many could not be decoded (a broken option list counts once).
func (a *Analyzer) decode(options []byte) int {
	var err error
	a.raw, err = appendMPTCPOptions(a.raw[:0], options)
	bad := 0
	if err != nil {
		bad++
	}
	clear(a.opts)
	a.opts = a.opts[:0]
	nd := 0
	for _, r := range a.raw {
		if nd < len(a.dssBuf) && decodeDSSInto(&a.dssBuf[nd], r) {
			a.opts = append(a.opts, &a.dssBuf[nd])
			nd++
			continue
		}
		o, err := DecodeOption(r)
		if err != nil {
			bad++
			continue
		}
		a.opts = append(a.opts, o)
	}
	return bad
}

// Packet feeds one TCP segment to the analyzer. The packet's slices are
// not retained.
func (a *Analyzer) Packet(p Packet) {
	if !a.haveStart {
		a.start, a.haveStart = p.Time, true
	}
	key := makeFlowKey(p.Src, p.Dst)
	isSYN := p.Flags&(TCPFlagSYN|TCPFlagACK) == TCPFlagSYN
	sf := a.flows[key]
	if sf == nil && !isSYN {
		return // not a subflow we know: no need to look at its options
	}
	bad := a.decode(p.Options)
	opts := a.opts
	if isSYN {
		a.syn(p, key, opts)
		if sf := a.flows[key]; sf != nil {
			sf.conn.optErrors += bad
		}
		return
	}
	c := sf.conn
	c.optErrors += bad
	sf.last, c.last = p.Time, p.Time
	if p.Has(TCPFlagSYN | TCPFlagACK) {
		a.synAck(p, key, sf, opts)
		return
	}
	fromClient := sf.fromClient(p.Src)
	fed := false // whether the checksum state already saw this payload
	var rst *MPTCPRst
	for _, o := range opts {
		switch o := o.(type) {
		case *MPCapable:
			fed = a.capableACK(p, sf, o) || fed
		case *MPJoin:
			if o.Form == JoinACK && p.Src == sf.initiator {
				sf.hmac = o.HMAC
				a.joinDone(p, sf)
			}
		case *DSS:
			fed = a.dss(p, sf, fromClient, o) || fed
		case *AddAddr:
			a.addAddr(p, c, fromClient, o)
		case *RemoveAddr:
			if len(c.removeAddr) < maxEvents {
				ids := make([]int, len(o.AddrIDs))
				for i, id := range o.AddrIDs {
					ids[i] = int(id)
				}
				c.removeAddr = append(c.removeAddr, RemoveAddrSummary{side(fromClient), ids, p.Time})
			}
			for _, id := range o.AddrIDs {
				if e := a.newEvent(c, EventRemoved, p.Time); e != nil {
					e.RemID, e.From = ptr8(id), side(fromClient)
					a.emit(e)
				}
			}
		case *MPPrio:
			sf.backup = o.Backup
			if e := a.subflowEvent(sf, EventSubPriority, p.Time); e != nil {
				e.Backup, e.From = bool8(o.Backup), side(fromClient)
				a.emit(e)
			}
		case *MPFail:
			c.mpFail++
			if e := a.subflowEvent(sf, EventMPFail, p.Time); e != nil {
				e.DSN, e.From = &o.DSN, side(fromClient)
				a.emit(e)
			}
		case *MPFastclose:
			if !c.fastclose {
				if e := a.subflowEvent(sf, EventFastclose, p.Time); e != nil {
					e.From = side(fromClient)
					a.emit(e)
				}
			}
			c.fastclose = true
		case *MPTCPRst:
			rst = o
			if len(c.resets) < maxEvents {
				c.resets = append(c.resets, ResetSummary{
					Src: p.Src.String(), Dst: p.Dst.String(),
					Reason: uint8(o.Reason), ReasonName: o.Reason.String(),
					Transient: o.Transient, Time: p.Time,
				})
			}
		}
	}
	if !fed && p.PayloadLen > 0 {
		a.feedCsum(p, sf)
	}
	// An established subflow that carries data without any MPTCP option
	// means a middlebox stripped them or the peer fell back.
	if len(a.raw) == 0 && p.PayloadLen > 0 && sf.synAck && c.established && !sf.joinRefused {
		a.fallback(c, "MPTCP options disappeared mid-connection", p.Time)
	}
	switch {
	case p.Flags&TCPFlagRST != 0:
		a.reset(p, sf, rst)
	case p.Flags&TCPFlagFIN != 0:
		if p.Src == sf.initiator {
			sf.finI = true
		} else {
			sf.finR = true
		}
		if sf.finI && sf.finR && !sf.closed {
			if e := a.subflowEvent(sf, EventSubClosed, p.Time); e != nil {
				e.Reason = "fin"
				a.emit(e)
			}
			a.closeSubflow(sf, p.Time)
		}
	}
}

// addAddr records an ADD_ADDR and reports a new announcement (the kernel
// repeats an ADD_ADDR until it is echoed: only the first is an event).
func (a *Analyzer) addAddr(p Packet, c *conn, fromClient bool, o *AddAddr) {
	dup := false
	if !o.Echo {
		for _, e := range c.addAddr {
			if e.fromClient == fromClient && !e.opt.Echo && e.opt.AddrID == o.AddrID && e.opt.Addr == o.Addr && e.opt.Port == o.Port {
				dup = true
				break
			}
		}
	}
	if len(c.addAddr) < maxEvents {
		c.addAddr = append(c.addAddr, addAddrEvent{fromClient, *o, p.Time})
	}
	if o.Echo || dup {
		return
	}
	if e := a.newEvent(c, EventAnnounced, p.Time); e != nil {
		e.setAddrs(netip.AddrPort{}, netip.AddrPortFrom(o.Addr, o.Port))
		e.RemID, e.From = ptr8(o.AddrID), side(fromClient)
		a.emit(e)
	}
}

// reset handles a RST on a subflow: a plain one is listed in the summary
// next to MP_TCPRSTs, and the subflow (or its join attempt) is over.
func (a *Analyzer) reset(p Packet, sf *subflow, rst *MPTCPRst) {
	if sf.closed {
		return
	}
	c := sf.conn
	if rst == nil && len(c.resets) < maxEvents {
		c.resets = append(c.resets, ResetSummary{
			Src: p.Src.String(), Dst: p.Dst.String(), Plain: true,
			ReasonName: "plain TCP RST", Time: p.Time,
		})
	}
	t := EventSubClosed
	if sf.join && !sf.joined {
		t = EventJoinFailed
	}
	if e := a.subflowEvent(sf, t, p.Time); e != nil {
		e.RST, e.Reason = true, "reset by "+side(sf.fromClient(p.Src))
		if rst != nil {
			e.ResetReason, e.ResetReasonName, e.ResetFlags = ptr8(uint8(rst.Reason)), rst.Reason.String(), ptr8(rst.Flags)
		}
		a.emit(e)
	}
	a.closeSubflow(sf, p.Time)
}

// closeSubflow marks sf closed and reports the connection closed with its
// last subflow.
func (a *Analyzer) closeSubflow(sf *subflow, t time.Time) {
	if sf.closed {
		return
	}
	sf.closed = true
	c := sf.conn
	c.open--
	if c.open > 0 || c.closedEvent {
		return
	}
	c.closedEvent = true
	if e := a.newEvent(c, EventClosed, t); e != nil {
		e.setAddrs(c.client, c.server)
		a.emit(e)
	}
}

// joinDone handles the third ACK of a join: the handshake is complete,
// and its HMACs can usually be checked at once.
func (a *Analyzer) joinDone(p Packet, sf *subflow) {
	if sf.joined || sf.closed || !sf.join {
		return
	}
	c := sf.conn
	res := c.joinResult(sf, c.canVerify())
	if res == HMACInvalid {
		if e := a.subflowEvent(sf, EventJoinFailed, p.Time); e != nil {
			e.LocID, e.RemID, e.Reason = ptr8(sf.addrID), ptr8(sf.remID), "invalid HMAC"
			a.emit(e)
		}
		return
	}
	sf.joined = true
	if e := a.subflowEvent(sf, EventSubEstablished, p.Time); e != nil {
		e.LocID, e.RemID, e.Backup = ptr8(sf.addrID), ptr8(sf.remID), bool8(sf.backup)
		a.emit(e)
	}
}

func side(fromClient bool) string {
	if fromClient {
		return "client"
	}
	return "server"
}

func findCapable(opts []Option) *MPCapable {
	for _, o := range opts {
		if c, ok := o.(*MPCapable); ok {
			return c
		}
	}
	return nil
}

func findJoin(opts []Option) *MPJoin {
	for _, o := range opts {
		if j, ok := o.(*MPJoin); ok {
			return j
		}
	}
	return nil
}

func (a *Analyzer) syn(p Packet, key flowKey, opts []Option) {
	if old := a.flows[key]; old != nil {
		if old.initiator == p.Src && old.isnI == p.Seq && !old.synAck {
			return // retransmitted SYN
		}
		delete(a.flows, key) // port reuse: the old subflow is over
		if !old.closed {
			old.closed = true
			old.conn.open--
		}
	}
	if mc := findCapable(opts); mc != nil {
		c := &conn{
			version: mc.Version, client: p.Src, server: p.Dst,
			clientFlags: mc.Flags, first: p.Time, last: p.Time, open: 1,
		}
		if mc.HasSenderKey { // version 0 sends its key in the SYN
			a.learnClientKey(c, mc.SenderKey)
		}
		sf := &subflow{conn: c, initiator: p.Src, responder: p.Dst, initiatorIsClient: true, isnI: p.Seq, first: p.Time, last: p.Time}
		c.subflows = append(c.subflows, sf)
		a.conns = append(a.conns, c)
		a.flows[key] = sf
		if e := a.newEvent(c, EventCreated, p.Time); e != nil {
			e.setAddrs(c.client, c.server)
			e.Version = ptr8(c.version)
			a.emit(e)
		}
		return
	}
	j := findJoin(opts)
	if j == nil || j.Form != JoinSYN {
		return
	}
	c := a.tokens[j.Token]
	if c == nil || c.dropped {
		return // join for a connection whose handshake we did not see
	}
	sf := &subflow{
		conn: c, index: len(c.subflows), join: true,
		initiator: p.Src, responder: p.Dst,
		// The SYN carries the receiver's token.
		initiatorIsClient: !(c.haveServer && versionToken(c.version, c.serverKey) != j.Token),
		isnI:              p.Seq, addrID: j.AddrID, backup: j.Backup, nonceA: j.Nonce,
		first: p.Time, last: p.Time,
	}
	c.subflows = append(c.subflows, sf)
	c.open++
	c.last = p.Time
	a.flows[key] = sf
}

func (a *Analyzer) learnClientKey(c *conn, k uint64) {
	if c.haveClient {
		return
	}
	c.clientKey, c.haveClient = k, true
	a.tokens[versionToken(c.version, k)] = c
	if c.version == 1 {
		c.dirs[0].advance(KeyIDSN(k))
	}
}

func (a *Analyzer) learnServerKey(c *conn, k uint64) {
	if c.haveServer {
		return
	}
	c.serverKey, c.haveServer = k, true
	a.tokens[versionToken(c.version, k)] = c
	if c.version == 1 {
		c.dirs[1].advance(KeyIDSN(k))
	}
}

func (a *Analyzer) synAck(p Packet, key flowKey, sf *subflow, opts []Option) {
	if p.Src != sf.responder {
		return
	}
	c := sf.conn
	sf.isnR, sf.synAck = p.Seq, true
	if !sf.join {
		mc := findCapable(opts)
		if mc == nil {
			c.dropped = true
			a.fallback(c, "SYN/ACK without MP_CAPABLE", p.Time)
			delete(a.flows, key)
			return
		}
		c.established = true
		c.serverFlags = mc.Flags
		if mc.HasSenderKey {
			a.learnServerKey(c, mc.SenderKey)
		}
		return
	}
	j := findJoin(opts)
	if j == nil || j.Form != JoinSYNACK {
		if !sf.joinRefused && !sf.closed {
			if e := a.subflowEvent(sf, EventJoinFailed, p.Time); e != nil {
				e.LocID, e.Reason = ptr8(sf.addrID), "SYN/ACK without MP_JOIN"
				a.emit(e)
			}
		}
		sf.joinRefused = true
		a.closeSubflow(sf, p.Time)
		return
	}
	sf.nonceB, sf.thmac, sf.haveTHMAC, sf.remID = j.Nonce, j.TruncatedHMAC, true, j.AddrID
}

// capableACK handles MP_CAPABLE after the handshake: the third ACK (keys)
// and, in version 1, the first data packet that repeats it with a length.
// It reports whether it fed the payload to the checksum state.
func (a *Analyzer) capableACK(p Packet, sf *subflow, mc *MPCapable) bool {
	c := sf.conn
	if sf.join || p.Src != c.client {
		return false
	}
	if mc.HasSenderKey {
		a.learnClientKey(c, mc.SenderKey)
	}
	if mc.HasReceiverKey {
		a.learnServerKey(c, mc.ReceiverKey)
	}
	if c.haveClient && c.haveServer && !c.estEvent {
		c.estEvent = true
		if e := a.newEvent(c, EventEstablished, p.Time); e != nil {
			e.setAddrs(c.client, c.server)
			e.ServerToken = fmt.Sprintf("%08x", versionToken(c.version, c.serverKey))
			a.emit(e)
		}
	}
	if !mc.HasDataLen || !c.haveClient || c.version != 1 {
		return false
	}
	// The implicit mapping starts at the first data byte of both spaces.
	dsn := KeyIDSN(c.clientKey) + 1
	a.mapping(sf, true, dsn, uint64(mc.DataLen))
	if !c.checksum() || !mc.HasChecksum {
		return false
	}
	a.startCsum(p, sf, 0, dsn, 1, mc.DataLen, uint32(mc.DataLen), mc.DataChecksum)
	return true
}

func (a *Analyzer) checkCsum(c *conn, ok bool) {
	if ok {
		c.csumOK++
	} else {
		c.csumBad++
	}
}

// startCsum begins verifying the checksum of a mapping in direction dir
// of sf (0: from the initiator) covering need payload bytes from
// relative subflow sequence number ssn, and feeds it this packet. An
// unfinished previous mapping gets this packet first, since it may end
// in it, and counts as unverified if it is still incomplete.
func (a *Analyzer) startCsum(p Packet, sf *subflow, dir int, dsn uint64, ssn uint32, dataLen uint16, need uint32, want uint16) {
	m := &sf.csum[dir]
	if m.seen && m.dsn == dsn && m.ssn == ssn && m.need == need && m.want == want {
		// Every segment of a TSO batch repeats its mapping: go on
		// summing, unless a finished mapping is sent again from its
		// start (a retransmission), which is checked afresh.
		isn := sf.isnI
		if dir == 1 {
			isn = sf.isnR
		}
		if m.active || p.Seq-isn != ssn {
			a.feedCsum(p, sf)
			return
		}
	}
	if m.active {
		a.feedCsum(p, sf)
		if m.active {
			m.active = false
			sf.conn.csumUnverified++
		}
	}
	var ph [16]byte
	binary.BigEndian.PutUint64(ph[:8], dsn)
	binary.BigEndian.PutUint32(ph[8:12], ssn)
	binary.BigEndian.PutUint16(ph[12:14], dataLen)
	*m = csumMap{active: true, seen: true, dsn: dsn, ssn: ssn, next: ssn, need: need, sum: onesSum(0, ph[:]), want: want}
	if need == 0 {
		a.finishCsum(sf.conn, m)
		return
	}
	a.feedCsum(p, sf)
}

// feedCsum adds the part of p's payload that continues the pending
// mapping of its direction. A gap (a segment missing from the capture)
// or a truncated payload abandons the mapping as unverified.
func (a *Analyzer) feedCsum(p Packet, sf *subflow) {
	dir, isn := 0, sf.isnI
	if p.Src != sf.initiator {
		dir, isn = 1, sf.isnR
	}
	m := &sf.csum[dir]
	if !m.active || p.PayloadLen == 0 {
		return
	}
	rel := p.Seq - isn
	off := int32(rel - m.next)
	if off > 0 {
		m.active = false
		sf.conn.csumUnverified++
		return
	}
	skip := int(-off)
	if skip >= p.PayloadLen {
		return // a retransmission of bytes already summed
	}
	if len(p.Payload) < p.PayloadLen {
		m.active = false
		sf.conn.csumUnverified++
		return
	}
	b := p.Payload[skip:]
	n := min(uint32(len(b)), m.need-m.done)
	b = b[:n]
	if m.done&1 == 1 && len(b) > 0 {
		// An odd offset: this byte is the low half of a 16-bit word.
		m.sum += uint64(b[0])
		b = b[1:]
	}
	m.sum = onesSum(m.sum, b)
	m.done += n
	m.next += n
	if m.done == m.need {
		a.finishCsum(sf.conn, m)
	}
}

func (a *Analyzer) finishCsum(c *conn, m *csumMap) {
	m.active = false
	a.checkCsum(c, ^fold(m.sum) == m.want)
}

// mapping records that sf carried [dsn, dsn+n) in one direction.
func (a *Analyzer) mapping(sf *subflow, fromClient bool, dsn, n uint64) {
	c := sf.conn
	d := &c.dirs[0]
	if !fromClient {
		d = &c.dirs[1]
	}
	bit := uint64(1) << min(sf.index, 63)
	fresh, re := d.sent.add(dsn, dsn+n, bit)
	sf.dataBytes += fresh
	if re > 0 {
		c.reinjections++
		c.reinjectedBytes += re
	}
	d.advance(dsn + n)
}

// dss handles a DSS option; it reports whether it fed the payload to the
// checksum state.
func (a *Analyzer) dss(p Packet, sf *subflow, fromClient bool, o *DSS) bool {
	c := sf.conn
	own, peer := &c.dirs[0], &c.dirs[1]
	if !fromClient {
		own, peer = peer, own
	}
	if o.HasDataACK {
		if v := peer.widen(o.DataACK, o.DataACK64); v > pruneLag {
			peer.sent.prune(v - pruneLag)
		}
	}
	if !o.HasMapping {
		return false
	}
	if o.DataLen == 0 && !o.DataFIN {
		a.fallback(c, "infinite mapping", p.Time)
		return false
	}
	dsn := own.widen(o.DSN, o.DSN64)
	n := uint64(o.DataLen)
	if o.DataFIN {
		n-- // the DATA_FIN occupies one DSN but carries no payload
	}
	a.mapping(sf, fromClient, dsn, n)
	// A DATA_FIN alone has no payload to check.
	if !c.checksum() || !o.HasChecksum || n == 0 {
		return false
	}
	dir := 0
	if p.Src != sf.initiator {
		dir = 1
	}
	a.startCsum(p, sf, dir, dsn, o.SubflowSeq, o.DataLen, uint32(n), o.Checksum)
	return true
}

// Summary returns the state accumulated so far. HMACs are checked here,
// with whatever keys were eventually learnt, so a join seen before the
// third ACK's keys is still verified.
func (a *Analyzer) Summary() Summary {
	s := Summary{Connections: []ConnSummary{}, FallbackConnections: []FallbackSummary{}}
	for _, c := range a.conns {
		if c.fallback {
			s.FallbackConnections = append(s.FallbackConnections, FallbackSummary{
				Client: c.client.String(), Server: c.server.String(),
				Reason: c.fallbackReason, Time: c.fallbackTime,
			})
		}
		if c.dropped {
			continue
		}
		s.Connections = append(s.Connections, c.summary())
	}
	return s
}

func (c *conn) summary() ConnSummary {
	cs := ConnSummary{
		Client: c.client.String(), Server: c.server.String(), Version: c.version,
		Established: c.established, Checksum: c.checksum(),
		Subflows: []SubflowSummary{}, AddAddr: []AddAddrSummary{},
		RemoveAddr:   append([]RemoveAddrSummary{}, c.removeAddr...),
		Resets:       append([]ResetSummary{}, c.resets...),
		Reinjections: c.reinjections, ReinjectedBytes: c.reinjectedBytes,
		Fallback: c.fallback, FallbackReason: c.fallbackReason,
		ChecksumVerified: c.csumOK, ChecksumFailures: c.csumBad, ChecksumUnverified: c.csumUnverified,
		MPFail: c.mpFail, Fastclose: c.fastclose, OptionErrors: c.optErrors,
		First: c.first, Last: c.last,
	}
	if c.haveClient {
		cs.ClientKey = fmt.Sprintf("%016x", c.clientKey)
		cs.ClientToken = fmt.Sprintf("%08x", versionToken(c.version, c.clientKey))
	}
	if c.haveServer {
		cs.ServerKey = fmt.Sprintf("%016x", c.serverKey)
		cs.ServerToken = fmt.Sprintf("%08x", versionToken(c.version, c.serverKey))
	}
	canVerify := c.canVerify()
	tally := func(r string) {
		switch r {
		case HMACValid:
			cs.HMACVerified++
		case HMACInvalid:
			cs.HMACFailures++
		case HMACUnverified:
			cs.HMACUnverified++
		}
	}
	for _, sf := range c.subflows {
		ss := SubflowSummary{
			Src: sf.initiator.String(), Dst: sf.responder.String(),
			AddrID: sf.addrID, Backup: sf.backup, Join: sf.join,
			DataBytes: sf.dataBytes, First: sf.first, Last: sf.last,
		}
		if sf.join {
			ss.HMAC = c.joinResult(sf, canVerify)
			tally(ss.HMAC)
		}
		cs.Subflows = append(cs.Subflows, ss)
	}
	for _, e := range c.addAddr {
		as := AddAddrSummary{
			From: side(e.fromClient), AddrID: e.opt.AddrID, Addr: e.opt.Addr.String(),
			Port: e.opt.Port, Echo: e.opt.Echo, Time: e.time,
		}
		if e.opt.HasHMAC {
			as.HMAC = HMACUnverified
			// ADD_ADDR HMACs exist only in version 1.
			if canVerify && c.version == 1 {
				snd, rcv := c.serverKey, c.clientKey
				if e.fromClient {
					snd, rcv = rcv, snd
				}
				as.HMAC = HMACInvalid
				if AddAddrHMAC(snd, rcv, e.opt.AddrID, e.opt.Addr, e.opt.Port) == e.opt.HMAC {
					as.HMAC = HMACValid
				}
			}
			tally(as.HMAC)
		}
		cs.AddAddr = append(cs.AddAddr, as)
	}
	return cs
}

// joinResult checks the SYN/ACK and third-ACK HMACs of a join subflow.
func (c *conn) joinResult(sf *subflow, canVerify bool) string {
	if !canVerify || !sf.haveTHMAC || sf.joinRefused {
		return HMACUnverified
	}
	keyA, keyB := c.clientKey, c.serverKey
	if !sf.initiatorIsClient {
		keyA, keyB = keyB, keyA
	}
	responder, initiator := ResponderJoinHMAC, InitiatorJoinHMAC
	if c.version == 0 {
		responder, initiator = ResponderJoinHMACv0, InitiatorJoinHMACv0
	}
	if responder(keyA, keyB, sf.nonceA, sf.nonceB) != sf.thmac {
		return HMACInvalid
	}
	if sf.hmac != nil && !bytes.Equal(initiator(keyA, keyB, sf.nonceA, sf.nonceB), sf.hmac) {
		return HMACInvalid
	}
	return HMACValid
}
