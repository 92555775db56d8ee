//go:build tools

package tools

import (
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/mdlayher/genetlink"
	_ "github.com/mdlayher/genetlink/genltest"
	_ "github.com/mdlayher/netlink"
	_ "github.com/mdlayher/netlink/nltest"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "go.uber.org/zap"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/sync/errgroup"
)
