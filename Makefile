# mptcpd-go: build, install and package.
#
#   make                      build build/mptcpd-go
#   make install              install under PREFIX (/usr/local), the unit,
#                             the sysusers file, a default policy (an
#                             existing one is kept), examples, man pages
#                             and shell completions; DESTDIR is honoured
#   make uninstall            remove what install installed, except the
#                             policy in /etc/mptcpd-go
#   make deb                  build/mptcpd-go_VERSION_ARCH.deb
#   make docs                 regenerate docs/man from the command table
#   make test                 go test ./...

PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/mptcpd-go
SYSCONFDIR  ?= /etc
CONFDIR     ?= $(SYSCONFDIR)/mptcpd-go
UNITDIR     ?= $(SYSCONFDIR)/systemd/system
SYSUSERSDIR ?= $(SYSCONFDIR)/sysusers.d
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
DESTDIR     ?=

GO          ?= go
CGO_ENABLED ?= 0
# Stripped: the module versions stay readable with go version -m.
GO_LDFLAGS  ?= -s -w
BUILDDIR    ?= build
BIN         := $(BUILDDIR)/mptcpd-go
# The path the unit in systemd/ runs; install rewrites it to SBINDIR.
UNIT_BIN    := /usr/local/sbin/mptcpd-go

INSTALL     ?= install

.PHONY: all build completions docs check-docs install uninstall deb test clean

all: build

# Always handed to go build, which knows what is up to date.
build:
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(BIN) ./cmd/mptcpd-go

# Generated from the command table, like the man pages.
completions:
	$(GO) run ./internal/cli/cmd/gendocs -dir $(BUILDDIR)/man -completions $(BUILDDIR)/completion

# The man pages are committed; a test checks they are up to date.
docs:
	$(GO) run ./internal/cli/cmd/gendocs -dir docs/man

check-docs:
	$(GO) test ./internal/cli -run 'TestManPages|TestCompletion|TestUsageMatchesTable'

install: build completions
	$(INSTALL) -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/mptcpd-go
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	sed 's|$(UNIT_BIN)|$(SBINDIR)/mptcpd-go|g' systemd/mptcpd-go.service > $(DESTDIR)$(UNITDIR)/mptcpd-go.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mptcpd-go.service
	$(INSTALL) -D -m 0644 systemd/mptcpd-go.sysusers $(DESTDIR)$(SYSUSERSDIR)/mptcpd-go.conf
	$(INSTALL) -d $(DESTDIR)$(CONFDIR)/interfaces.d
	@# The default policy, only where there is none: a main file turns the
	@# built-in interface policy off, so the two go in together.
	@if [ -e $(DESTDIR)$(CONFDIR)/mptcpd-go.toml ]; then \
		echo "keeping the existing $(DESTDIR)$(CONFDIR)/mptcpd-go.toml"; \
	else \
		echo "$(INSTALL) -m 0644 systemd/mptcpd-go.toml systemd/interfaces.d/99-default.toml -> $(DESTDIR)$(CONFDIR)"; \
		$(INSTALL) -m 0644 systemd/mptcpd-go.toml $(DESTDIR)$(CONFDIR)/mptcpd-go.toml && \
		$(INSTALL) -m 0644 systemd/interfaces.d/99-default.toml $(DESTDIR)$(CONFDIR)/interfaces.d/99-default.toml; \
	fi
	$(INSTALL) -d $(DESTDIR)$(DOCDIR)/examples
	cp -R systemd/examples/. $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 systemd/proxy.conf $(DESTDIR)$(DOCDIR)/examples/proxy.conf
	$(INSTALL) -m 0644 systemd/mptcpd-go.toml $(DESTDIR)$(DOCDIR)/examples/mptcpd-go.toml
	$(INSTALL) -D -m 0644 docs/man/mptcpd-go.8 $(DESTDIR)$(MANDIR)/man8/mptcpd-go.8
	$(INSTALL) -D -m 0644 docs/man/mptcpd-go.toml.5 $(DESTDIR)$(MANDIR)/man5/mptcpd-go.toml.5
	$(INSTALL) -D -m 0644 $(BUILDDIR)/completion/mptcpd-go.bash $(DESTDIR)$(BASHCOMPDIR)/mptcpd-go
	$(INSTALL) -D -m 0644 $(BUILDDIR)/completion/_mptcpd-go $(DESTDIR)$(ZSHCOMPDIR)/_mptcpd-go
	@# On this machine (no DESTDIR): create the user, tell systemd.
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v systemd-sysusers >/dev/null 2>&1; then systemd-sysusers $(SYSUSERSDIR)/mptcpd-go.conf; fi; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
		echo "installed; start it with: mptcpd-go policy check && systemctl enable --now mptcpd-go"; \
	fi

uninstall:
	-@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl disable --now mptcpd-go.service 2>/dev/null; fi
	rm -f $(DESTDIR)$(SBINDIR)/mptcpd-go
	rm -f $(DESTDIR)$(UNITDIR)/mptcpd-go.service
	rm -f $(DESTDIR)$(SYSUSERSDIR)/mptcpd-go.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(MANDIR)/man8/mptcpd-go.8 $(DESTDIR)$(MANDIR)/man5/mptcpd-go.toml.5
	rm -f $(DESTDIR)$(BASHCOMPDIR)/mptcpd-go $(DESTDIR)$(ZSHCOMPDIR)/_mptcpd-go
	-@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept the policy in $(DESTDIR)$(CONFDIR) and the user mptcpd-go; remove them by hand if you wish"

deb:
	packaging/build-deb.sh

test:
	$(GO) test ./...

clean:
	rm -rf $(BUILDDIR)
