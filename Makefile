# sasl-xoauth2: `make && sudo make install`, `make test`, `make demo`,
# `make dist` (source + vendored crates), `make rpm`, `make deb`.

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

.PHONY: all build plugin helper tool test demo install uninstall clean dist rpm deb test-mac

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DISTDIR ?= target/dist
DIST_SRC    := $(DISTDIR)/sasl-xoauth2-$(VERSION).tar.gz
DIST_VENDOR := $(DISTDIR)/sasl-xoauth2-$(VERSION)-vendor.tar.gz

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

# Release tarballs for offline builds (Fedora/EPEL build without network):
# the source tree as committed plus uncommitted changes to tracked files,
# and every crate of Cargo.lock (`cargo vendor`) under vendor/.
dist:
	rm -rf $(DISTDIR)/vendor && mkdir -p $(DISTDIR)
	tree=$$(git stash create) && git archive --format=tar.gz --prefix=sasl-xoauth2-$(VERSION)/ \
	  -o $(DIST_SRC) $${tree:-HEAD}
	$(CARGO) vendor --locked --quiet $(DISTDIR)/vendor >/dev/null
	tar -C $(DISTDIR) --sort=name --owner=0 --group=0 --numeric-owner \
	  --mtime="$$(git log -1 --format=@%ct)" -czf $(DIST_VENDOR) vendor
	rm -rf $(DISTDIR)/vendor
	@echo "dist: $(DIST_SRC) $(DIST_VENDOR)"

# RPMs from the dist tarballs.  On a host without Fedora's RPM macros
# (cargo-rpm-macros, selinux-policy-devel), e.g. Debian, the test stand-ins in
# tests/packaging/fedora-macros are loaded and BuildRequires are not checked;
# such RPMs are for inspection only.
RPMTOP ?= $(CURDIR)/target/rpmbuild
rpm: dist
	mkdir -p $(RPMTOP)
	@if rpm --eval '%{?selinux_modules_install:y}%{?cargo_prep:y}' | grep -qx yy; then \
	  set -x; rpmbuild -ba --define '_topdir $(RPMTOP)' --define '_sourcedir $(CURDIR)/$(DISTDIR)' \
	    $(RPMBUILD_FLAGS) packaging/rpm/sasl-xoauth2.spec; \
	else \
	  echo "rpm: no Fedora RPM macros here: using tests/packaging/fedora-macros (test build only)"; \
	  set -x; rpmbuild -ba --nodeps --load tests/packaging/fedora-macros \
	    --define '_topdir $(RPMTOP)' --define '_sourcedir $(CURDIR)/$(DISTDIR)' \
	    $(RPMBUILD_FLAGS) packaging/rpm/sasl-xoauth2.spec; \
	fi

# Binary .debs (debian/), built in this tree so that target/ is reused;
# they land in $(DEBDIR), not in the parent directory.
# Rust from rustup rather than Debian's cargo: build profile pkg.sasl-xoauth2.rustup.
DEBDIR ?= $(CURDIR)/target/deb
DEB_PROFILES ?= $(shell dpkg -S "$$(command -v cargo)" >/dev/null 2>&1 || echo pkg.sasl-xoauth2.rustup)
deb:
	mkdir -p $(DEBDIR)
	DEB_OUTDIR=$(DEBDIR) dpkg-buildpackage -b -us -uc --no-sign $(if $(DEB_PROFILES),-P$(DEB_PROFILES)) \
	  --buildinfo-option=-u$(DEBDIR) --changes-option=-u$(DEBDIR) \
	  --buildinfo-file=$(DEBDIR)/sasl-xoauth2.buildinfo --changes-file=$(DEBDIR)/sasl-xoauth2.changes
