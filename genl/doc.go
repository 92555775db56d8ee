// Package genl is a typed client for the Linux kernel's Multipath TCP path
// manager generic netlink family, "mptcp_pm".
//
// It covers the in-kernel path manager (endpoints and limits), the userspace
// path manager (announce, remove, subflow create/destroy, per-connection
// flags and addresses) and the "mptcp_pm_events" multicast group.
//
// Values use plain Go types from net/netip; the netlink wire format stays
// inside this package. Kernel errors are translated in one place into the
// exported sentinels (ErrExists, ErrNotFound, ...) which still match the
// underlying errno with errors.Is and keep the kernel's extended-ack text.
package genl
