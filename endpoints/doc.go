// Package endpoints keeps the kernel's MPTCP endpoints and limits equal to
// what the daemon wants for the links and addresses that exist right now.
//
// It is the mechanism half of the daemon; the policy half lives elsewhere
// and reaches this package only through a Desired function. Data flows one
// way:
//
//	Watcher (links, addresses, default routes)
//	  → Snapshot → Desired → []Want
//	  → Plan(want, kernel dump, Owned) → []Op → genl calls
//
// Ownership is the central rule: the package changes and deletes only the
// endpoints it created itself, recorded in Owned and kept across restarts in
// a small JSON state file. Endpoints added by hand or by other tools
// (foreign) are never touched, but they do count against the kernel's limit
// of genl.MaxEndpoints endpoints per namespace.
//
// Plan is a pure function and holds all the decisions; Reconciler runs it
// whenever something changed (or periodically, to catch drift) and applies
// the result; Watcher follows the kernel's view of links and addresses with
// rtnetlink subscriptions.
package endpoints
