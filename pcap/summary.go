package pcap

import (
	"bytes"
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
	MPFail           int                 `json:"mp_fail"`
	Fastclose        bool                `json:"fastclose"`
	OptionErrors     int                 `json:"option_errors"`
	Resets           []ResetSummary      `json:"resets"`
	First            time.Time           `json:"first"`
	Last             time.Time           `json:"last"`
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

// ResetSummary is one MP_TCPRST seen on the connection.
type ResetSummary struct {
	Src        string    `json:"src"`
	Dst        string    `json:"dst"`
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
	dirs                     [2]direction // 0: client to server, 1: server to client
	addAddr                  []addAddrEvent
	removeAddr               []RemoveAddrSummary
	resets                   []ResetSummary
	reinjections             int
	reinjectedBytes          uint64
	csumOK, csumBad          int
	mpFail                   int
	fastclose                bool
	optErrors                int
	first, last              time.Time
}

func (c *conn) checksum() bool {
	return (c.clientFlags|c.serverFlags)&CapableFlagA != 0
}

func (c *conn) setFallback(reason string, t time.Time) {
	if !c.fallback {
		c.fallback, c.fallbackReason, c.fallbackTime = true, reason, t
	}
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
	backup            bool
	nonceA, nonceB    uint32
	thmac             uint64
	haveTHMAC         bool
	hmac              []byte
	joinRefused       bool
	dataBytes         uint64
	first, last       time.Time
}

// fromClient reports whether a packet with source src travels from the
// connection's client side to its server side.
func (s *subflow) fromClient(src netip.AddrPort) bool {
	return (src == s.initiator) == s.initiatorIsClient
}

// Analyzer accumulates per-connection MPTCP state from TCP segments fed to
// it in capture order. Its memory grows with the number of connections and
// subflows, not with the number of packets. It is not safe for concurrent
// use.
type Analyzer struct {
	flows  map[flowKey]*subflow
	tokens map[uint32]*conn
	conns  []*conn
}

// NewAnalyzer returns an empty Analyzer.
func NewAnalyzer() *Analyzer {
	return &Analyzer{flows: map[flowKey]*subflow{}, tokens: map[uint32]*conn{}}
}

// Packet feeds one TCP segment to the analyzer. The packet's slices are
// not retained.
func (a *Analyzer) Packet(p Packet) {
	raw, walkErr := MPTCPOptions(p.Options)
	opts := make([]Option, 0, len(raw))
	bad := 0
	if walkErr != nil {
		bad++
	}
	for _, r := range raw {
		o, err := DecodeOption(r)
		if err != nil {
			bad++
			continue
		}
		opts = append(opts, o)
	}
	key := makeFlowKey(p.Src, p.Dst)
	if p.Has(TCPFlagSYN) && !p.Has(TCPFlagACK) {
		a.syn(p, key, opts)
		if sf := a.flows[key]; sf != nil {
			sf.conn.optErrors += bad
		}
		return
	}
	sf := a.flows[key]
	if sf == nil {
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
	for _, o := range opts {
		switch o := o.(type) {
		case *MPCapable:
			a.capableACK(p, sf, o)
		case *MPJoin:
			if o.Form == JoinACK && p.Src == sf.initiator {
				sf.hmac = o.HMAC
			}
		case *DSS:
			a.dss(p, sf, fromClient, o)
		case *AddAddr:
			if len(c.addAddr) < maxEvents {
				c.addAddr = append(c.addAddr, addAddrEvent{fromClient, *o, p.Time})
			}
		case *RemoveAddr:
			if len(c.removeAddr) < maxEvents {
				ids := make([]int, len(o.AddrIDs))
				for i, id := range o.AddrIDs {
					ids[i] = int(id)
				}
				c.removeAddr = append(c.removeAddr, RemoveAddrSummary{side(fromClient), ids, p.Time})
			}
		case *MPPrio:
			sf.backup = o.Backup
		case *MPFail:
			c.mpFail++
		case *MPFastclose:
			c.fastclose = true
		case *MPTCPRst:
			if len(c.resets) < maxEvents {
				c.resets = append(c.resets, ResetSummary{
					Src: p.Src.String(), Dst: p.Dst.String(),
					Reason: uint8(o.Reason), ReasonName: o.Reason.String(),
					Transient: o.Transient, Time: p.Time,
				})
			}
		}
	}
	// An established subflow that carries data without any MPTCP option
	// means a middlebox stripped them or the peer fell back.
	if len(raw) == 0 && p.PayloadLen > 0 && sf.synAck && c.established && !sf.joinRefused {
		c.setFallback("MPTCP options disappeared mid-connection", p.Time)
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
	}
	if mc := findCapable(opts); mc != nil {
		c := &conn{
			version: mc.Version, client: p.Src, server: p.Dst,
			clientFlags: mc.Flags, first: p.Time, last: p.Time,
		}
		if mc.HasSenderKey { // version 0 sends its key in the SYN
			a.learnClientKey(c, mc.SenderKey)
		}
		sf := &subflow{conn: c, initiator: p.Src, responder: p.Dst, initiatorIsClient: true, isnI: p.Seq, first: p.Time, last: p.Time}
		c.subflows = append(c.subflows, sf)
		a.conns = append(a.conns, c)
		a.flows[key] = sf
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
			c.setFallback("SYN/ACK without MP_CAPABLE", p.Time)
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
		sf.joinRefused = true
		return
	}
	sf.nonceB, sf.thmac, sf.haveTHMAC = j.Nonce, j.TruncatedHMAC, true
}

// capableACK handles MP_CAPABLE after the handshake: the third ACK (keys)
// and, in version 1, the first data packet that repeats it with a length.
func (a *Analyzer) capableACK(p Packet, sf *subflow, mc *MPCapable) {
	c := sf.conn
	if sf.join || p.Src != c.client {
		return
	}
	if mc.HasSenderKey {
		a.learnClientKey(c, mc.SenderKey)
	}
	if mc.HasReceiverKey {
		a.learnServerKey(c, mc.ReceiverKey)
	}
	if !mc.HasDataLen || !c.haveClient || c.version != 1 {
		return
	}
	// The implicit mapping starts at the first data byte of both spaces.
	dsn := KeyIDSN(c.clientKey) + 1
	a.mapping(sf, true, dsn, uint64(mc.DataLen))
	if c.checksum() && mc.HasChecksum && p.PayloadLen == int(mc.DataLen) && len(p.Payload) == p.PayloadLen {
		a.checkCsum(c, DSSChecksum(dsn, 1, mc.DataLen, p.Payload) == mc.DataChecksum)
	}
}

func (a *Analyzer) checkCsum(c *conn, ok bool) {
	if ok {
		c.csumOK++
	} else {
		c.csumBad++
	}
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

func (a *Analyzer) dss(p Packet, sf *subflow, fromClient bool, o *DSS) {
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
		return
	}
	if o.DataLen == 0 && !o.DataFIN {
		c.setFallback("infinite mapping", p.Time)
		return
	}
	dsn := own.widen(o.DSN, o.DSN64)
	n := uint64(o.DataLen)
	if o.DataFIN {
		n-- // the DATA_FIN occupies one DSN but carries no payload
	}
	a.mapping(sf, fromClient, dsn, n)
	isn := sf.isnI
	if p.Src == sf.responder {
		isn = sf.isnR
	}
	rel := p.Seq - isn
	if c.checksum() && o.HasChecksum && o.SubflowSeq == rel && p.PayloadLen == int(o.DataLen) && len(p.Payload) == p.PayloadLen {
		a.checkCsum(c, VerifyDSSChecksum(dsn, rel, o.DataLen, p.Payload, o.Checksum))
	}
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
		ChecksumVerified: c.csumOK, ChecksumFailures: c.csumBad,
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
	// HMACs are only defined here for version 1 (SHA-256).
	canVerify := c.haveClient && c.haveServer && c.version == 1
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
			if canVerify {
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
	if ResponderJoinHMAC(keyA, keyB, sf.nonceA, sf.nonceB) != sf.thmac {
		return HMACInvalid
	}
	if sf.hmac != nil && !bytes.Equal(InitiatorJoinHMAC(keyA, keyB, sf.nonceA, sf.nonceB), sf.hmac) {
		return HMACInvalid
	}
	return HMACValid
}
