// Package pathmgr is mptcpd-go's userspace path manager: with the kernel's
// net.mptcp.path_manager=userspace (pm_type=1 before 6.15) the in-kernel
// path manager steps aside and this package drives every MPTCP connection
// through mptcp_pm events and commands.
//
// Data flows one way:
//
//	genl events ─→ Tracker (ConnState per token) ─┐
//	endpoints.Source ─→ LocalView (interfaces × Config) ─┼→ Decide → []Action → workers → genl commands
//	                                                     │
//	sock_diag + ConnEndpoints (after lost events) ───────┘
//
// Config is the typed policy (interface rules, connection rules, a
// preset, the subflow cap, the retry backoff); the policy package fills
// it. Decide is a pure function of one connection's state, the local view,
// the policy and the time, and holds every decision. The Tracker keeps the
// per-connection state from events and from the actions in flight, so a
// decision never asks the kernel twice. The Manager ties them together
// with one decision loop and a few kernel-call workers; see Manager.
//
// Tokens are printed as 8 hex digits; log lines use the keys token, addr
// and iface.
package pathmgr
