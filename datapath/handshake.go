package datapath

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// Handshake errors; returned errors wrap one of these.
var (
	// ErrHandshake reports a failed CAPABLE exchange.
	ErrHandshake = errors.New("datapath: handshake failed")
	// ErrAuth reports a missing or wrong pre-shared-key MAC.
	ErrAuth = errors.New("datapath: pre-shared key authentication failed")
	// ErrJoinRefused reports a JOIN that was refused.
	ErrJoinRefused = errors.New("datapath: join refused")
)

func randNonce() (uint32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("datapath: generating nonce: %w", err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// deadlineFor applies the handshake timeout (and ctx's deadline) to nc and
// closes nc if ctx is cancelled; the returned stop undoes both.
func deadlineFor(ctx context.Context, nc net.Conn, timeout time.Duration) (stop func()) {
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = nc.SetDeadline(dl)
	stopAfter := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	return func() {
		stopAfter()
		_ = nc.SetDeadline(time.Time{})
	}
}

func readFrame[T Frame](dec *Decoder, what string) (T, error) {
	var zero T
	f, err := dec.Decode()
	if err != nil {
		return zero, fmt.Errorf("reading %s: %w", what, err)
	}
	t, ok := f.(T)
	if !ok {
		return zero, fmt.Errorf("%w: got %v, want %s", ErrProtocol, f.Type(), what)
	}
	return t, nil
}

// Client runs the CAPABLE handshake as the client over nc (the first
// subflow, any net.Conn) and returns the connection. nc is closed on error.
func Client(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	c, err := clientHandshake(ctx, nc, cfg.withDefaults(), nil, nil)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// clientHandshake runs CAPABLE; di and rt, from Dial, are set before the
// subflow starts so that an early ADD_ADDR already sees the paths.
func clientHandshake(ctx context.Context, nc net.Conn, cfg Config, di *dialInfo, rt *route) (*Conn, error) {
	stop := deadlineFor(ctx, nc, cfg.HandshakeTimeout)
	defer stop()
	a, err := NewKey(nil)
	if err != nil {
		return nil, err
	}
	psk := len(cfg.PSK) > 0
	if err := Encode(nc, &Capable{Version: Version, PSKRequired: psk, Key: a}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	dec := newBufferedDecoder(nc)
	reply, err := readFrame[*Capable](dec, "CAPABLE reply")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	b := reply.Key
	switch {
	case reply.Version != Version:
		return nil, fmt.Errorf("%w: server speaks version %d, want %d", ErrHandshake, reply.Version, Version)
	case reply.PSKRequired && !psk:
		return nil, fmt.Errorf("%w: server requires a pre-shared key, none configured", ErrAuth)
	case psk && !VerifyMAC(PSKMAC(cfg.PSK, b, a), reply.MAC):
		return nil, fmt.Errorf("%w: server's MAC does not verify (different pre-shared key?)", ErrAuth)
	case b == a:
		return nil, fmt.Errorf("%w: server echoed our key", ErrHandshake)
	}
	third := &Capable{Version: Version, PSKRequired: psk, Key: a}
	if psk {
		third.MAC = PSKMAC(cfg.PSK, a, b)
	}
	if err := Encode(nc, third); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	stop()
	c := newConn(cfg, a, b, true)
	c.nextAddrID = 1
	c.dial = di
	if rt != nil {
		c.routes = map[routeKey]*route{rt.key: rt}
	}
	if _, err := c.attach(nc, dec, false, 0, -1, rt); err != nil {
		return nil, err
	}
	return c, nil
}

// serverHandshake answers the client's first CAPABLE. register reserves a
// key whose token is unused and returns false on collision.
func serverHandshake(nc net.Conn, dec *Decoder, first *Capable, cfg Config, register func(Key) bool) (Key, error) {
	psk := len(cfg.PSK) > 0
	if first.Version != Version {
		return 0, fmt.Errorf("%w: client speaks version %d, want %d", ErrHandshake, first.Version, Version)
	}
	if len(first.MAC) != 0 {
		return 0, fmt.Errorf("%w: MAC in first CAPABLE", ErrProtocol)
	}
	a := first.Key
	var b Key
	for {
		k, err := NewKey(nil)
		if err != nil {
			return 0, err
		}
		if k != a && register(k) {
			b = k
			break
		}
	}
	reply := &Capable{Version: Version, PSKRequired: psk, Key: b}
	if psk {
		reply.MAC = PSKMAC(cfg.PSK, b, a)
	}
	if err := Encode(nc, reply); err != nil {
		return b, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	third, err := readFrame[*Capable](dec, "third CAPABLE")
	if err != nil {
		return b, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if third.Key != a || third.Version != Version {
		return b, fmt.Errorf("%w: third CAPABLE does not echo the client's key", ErrHandshake)
	}
	if psk && !VerifyMAC(PSKMAC(cfg.PSK, a, b), third.MAC) {
		if len(third.MAC) == 0 {
			return b, fmt.Errorf("%w: client sent no MAC", ErrAuth)
		}
		return b, fmt.Errorf("%w: client's MAC does not verify", ErrAuth)
	}
	return b, nil
}

// AddSubflow joins nc (a fresh connection to the server, any net.Conn) to
// c as an extra subflow (RFC 8684 MP_JOIN); backup subflows carry data only
// when no active subflow is left. Only the client side can join. nc is
// closed on error.
func (c *Conn) AddSubflow(ctx context.Context, nc net.Conn, backup bool) error {
	if err := c.join(ctx, nc, backup, -1, nil); err != nil {
		_ = nc.Close()
		return err
	}
	return nil
}

func (c *Conn) join(ctx context.Context, nc net.Conn, backup bool, remoteAddrID int, rt *route) error {
	if !c.isClient {
		return fmt.Errorf("datapath: adding subflow: only the client side joins")
	}
	c.mu.Lock()
	id := c.nextAddrID
	c.nextAddrID++
	c.mu.Unlock()
	stop := deadlineFor(ctx, nc, c.cfg.HandshakeTimeout)
	defer stop()
	ra, err := randNonce()
	if err != nil {
		return err
	}
	token := c.remote.Token()
	if err := Encode(nc, &Join{Token: token, Nonce: ra, AddrID: id, Backup: backup}); err != nil {
		return fmt.Errorf("%w: %w", ErrJoinRefused, err)
	}
	dec := newBufferedDecoder(nc)
	reply, err := readFrame[*Join](dec, "JOIN reply")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJoinRefused, err)
	}
	if reply.Token != token || !VerifyMAC(JoinSynAckMAC(c.remote, c.local, reply.Nonce, ra), reply.MAC) {
		return fmt.Errorf("%w: server's JOIN MAC does not verify", ErrJoinRefused)
	}
	ack := &Join{Token: token, Nonce: ra, AddrID: id, Backup: backup,
		MAC: JoinAckMAC(c.local, c.remote, ra, reply.Nonce)}
	if err := Encode(nc, ack); err != nil {
		return fmt.Errorf("%w: %w", ErrJoinRefused, err)
	}
	stop()
	_, err = c.attach(nc, dec, backup, id, remoteAddrID, rt)
	return err
}

// serverJoin runs the responder side of a JOIN whose first frame was
// first; lookup finds the connection by token.
func serverJoin(nc net.Conn, dec *Decoder, first *Join, guard *ReplayGuard, lookup func(uint32) *Conn) (*Conn, error) {
	if len(first.MAC) != 0 {
		return nil, fmt.Errorf("%w: MAC in first JOIN", ErrJoinRefused)
	}
	c := lookup(first.Token)
	if c == nil {
		return nil, fmt.Errorf("%w: unknown token %#08x", ErrJoinRefused, first.Token)
	}
	if err := guard.Check(first.Token, first.Nonce); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoinRefused, err)
	}
	rb, err := randNonce()
	if err != nil {
		return nil, err
	}
	reply := &Join{Token: first.Token, Nonce: rb, AddrID: first.AddrID, Backup: first.Backup,
		MAC: JoinSynAckMAC(c.local, c.remote, rb, first.Nonce)}
	if err := Encode(nc, reply); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoinRefused, err)
	}
	ack, err := readFrame[*Join](dec, "final JOIN")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJoinRefused, err)
	}
	if ack.Token != first.Token || ack.Nonce != first.Nonce ||
		!VerifyMAC(JoinAckMAC(c.remote, c.local, first.Nonce, rb), ack.MAC) {
		return nil, fmt.Errorf("%w: client's JOIN MAC does not verify", ErrJoinRefused)
	}
	return c, nil
}
