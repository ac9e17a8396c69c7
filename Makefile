# sasl-xoauth2: `make && sudo make install`, `make test`, `make demo`.

PREFIX      ?= /usr
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
LIBEXECDIR  ?= $(PREFIX)/libexec/sasl-xoauth2
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
# libsasl2's plugin directory for this distribution (override on the command line).
SASL_PLUGIN_DIR ?= $(shell scripts/sasl-plugin-dir)

CARGO  ?= cargo
TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
RELEASE := target/release
# The helper is linked statically so it runs inside Postfix's chroot with
# nothing copied there; --target keeps the flag off build scripts.
HELPER := target/$(TARGET)/release/sasl-xoauth2-refresh

.PHONY: all build plugin helper tool test test-mac demo install uninstall clean

all: build

build: plugin helper tool

plugin:
	$(CARGO) build --release -p sasl-xoauth2-plugin

tool:
	$(CARGO) build --release -p sasl-xoauth2-tool

helper:
	RUSTFLAGS='-C target-feature=+crt-static' $(CARGO) build --release -p sasl-xoauth2-refresh --bin sasl-xoauth2-refresh --target $(TARGET)

test:
	scripts/test

# SELinux and AppArmor enforcing, in a Debian 12 VM (QEMU); needs root.
test-mac:
	tests/mac/run

demo:
	scripts/demo

install: build
	install -D -m 0755 $(RELEASE)/libsasl_xoauth2.so $(DESTDIR)$(SASL_PLUGIN_DIR)/libsasl-xoauth2.so
	# 0711: not readable, so the kernel makes it non-dumpable from exec on
	# (no other process of the mail user can read its memory or its stdin).
	install -D -m 0711 $(HELPER) $(DESTDIR)$(LIBEXECDIR)/sasl-xoauth2-refresh
	install -D -m 0755 $(RELEASE)/sasl-xoauth2-tool $(DESTDIR)$(BINDIR)/sasl-xoauth2-tool
	for page in docs/*.[1-8]; do \
	  [ -f "$$page" ] || continue; \
	  sec=$${page##*.}; install -D -m 0644 "$$page" $(DESTDIR)$(MANDIR)/man$$sec/$$(basename $$page); \
	done
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions \
	           $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(RELEASE)/sasl-xoauth2-tool completions bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sasl-xoauth2-tool
	$(RELEASE)/sasl-xoauth2-tool completions zsh > $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_sasl-xoauth2-tool
	$(RELEASE)/sasl-xoauth2-tool completions fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sasl-xoauth2-tool.fish
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/sasl-xoauth2.conf ]; then \
	  install -D -m 0600 docs/sasl-xoauth2.conf.example $(DESTDIR)$(SYSCONFDIR)/sasl-xoauth2.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SASL_PLUGIN_DIR)/libsasl-xoauth2.so $(DESTDIR)$(LIBEXECDIR)/sasl-xoauth2-refresh \
	      $(DESTDIR)$(BINDIR)/sasl-xoauth2-tool

clean:
	$(CARGO) clean
