#!/usr/bin/env bash
# Packaging check: builds the .deb (`make deb`) and the RPMs (`make rpm`,
# with tests/packaging/fedora-macros standing in for Fedora's macros), lints
# both, inspects the RPMs' file lists, modes and scriptlets, then installs the
# .deb on this machine, checks that libsasl2 loads the plugin and that the
# installed helper's --check runs, and purges it again, comparing file lists.
#
# Needs root (dpkg -i) and the Debian packages from scripts/deps.  Leaves the
# system as it found it: the .deb is purged at the end, also on failure.
#
# Environment:
#   PACKAGING_SKIP_BUILD=1  reuse target/deb and target/rpmbuild from a
#                           previous run instead of building again
#   KEEP_WORKDIR=1          keep the temporary directory (path is printed)
#
# Output: "ok - ..." / "not ok - ..." per assertion, then
#   packaging: N passed, M failed
# Exit status: 0 all passed, 1 an assertion failed, 2 could not run.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

NAME=packaging
# shellcheck source=tests/policy/tap.sh
source "$root/tests/policy/tap.sh"

missing=()
for t in rpmbuild rpm rpm2cpio rpmlint lintian dpkg-buildpackage dh dpkg-deb \
	saslpluginviewer semodule_unpackage bzcat cpio readelf git cargo; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run scripts/deps)"
[[ $(id -u) == 0 ]] || die "needs root (dpkg -i / dpkg --purge)"
if dpkg-query -W -f='${Status}' sasl-xoauth2 2>/dev/null | grep -q 'installed'; then
	die "the sasl-xoauth2 package is already installed; this check installs and purges it"
fi

make_workdir

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DEBDIR=$root/target/deb
RPMTOP=$root/target/rpmbuild
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
PLUGIN_DIR=/usr/lib/$MULTIARCH/sasl2
PKG_DEB=$DEBDIR/sasl-xoauth2_${VERSION}-1_$(dpkg --print-architecture).deb

# ---------------------------------------------------------------- build
if [[ ${PACKAGING_SKIP_BUILD:-0} != 1 ]]; then
	rm -rf "$DEBDIR" "$RPMTOP"
	if make --no-print-directory deb >"$work/deb.log" 2>&1; then
		ok "make deb"
	else
		not_ok "make deb" "$(tail -n 40 "$work/deb.log")"
	fi
	# %check (the common crate's unit tests) already ran in `make test`.
	if make --no-print-directory rpm RPMBUILD_FLAGS=--nocheck >"$work/rpm.log" 2>&1; then
		ok "make rpm (Debian's rpmbuild, Fedora macros from tests/packaging/fedora-macros)"
	else
		not_ok "make rpm (Debian's rpmbuild, Fedora macros from tests/packaging/fedora-macros)" "$(tail -n 40 "$work/rpm.log")"
	fi
fi
RPM_MAIN=$(ls "$RPMTOP"/RPMS/*/sasl-xoauth2-"$VERSION"-1*.rpm 2>/dev/null | grep -v -e -selinux- -e -debug | head -n 1 || true)
RPM_SEL=$(ls "$RPMTOP"/RPMS/noarch/sasl-xoauth2-selinux-"$VERSION"-1*.noarch.rpm 2>/dev/null | head -n 1 || true)
SRPM=$(ls "$RPMTOP"/SRPMS/sasl-xoauth2-"$VERSION"-1*.src.rpm 2>/dev/null | head -n 1 || true)
for f in "$PKG_DEB" "$RPM_MAIN" "$RPM_SEL" "$SRPM"; do
	[[ -n $f && -f $f ]] || { not_ok "package built: ${f:-(none)}"; summary_and_exit; }
done
ok "packages: $(basename "$PKG_DEB") $(basename "$RPM_MAIN") $(basename "$RPM_SEL") $(basename "$SRPM")"

# ---------------------------------------------------------------- lint
# No errors and no warnings: each remaining one is overridden with its
# reason in debian/sasl-xoauth2.lintian-overrides or packaging/rpm/sasl-xoauth2.rpmlintrc.
lintian --no-cfg --display-info --fail-on none "$PKG_DEB" >"$work/lintian.log" 2>&1 || true
if grep -qE '^[EW]: ' "$work/lintian.log"; then
	not_ok "lintian: no errors or warnings" "$(grep -E '^[EW]: ' "$work/lintian.log")"
else
	ok "lintian: no errors or warnings ($(grep -c '^[IPX]: ' "$work/lintian.log") info/pedantic tags)"
fi
rpmlint -c tests/packaging/rpmlint-fedora.toml -r packaging/rpm/sasl-xoauth2.rpmlintrc "$RPM_MAIN" "$RPM_SEL" "$SRPM" packaging/rpm/sasl-xoauth2.spec \
	>"$work/rpmlint.log" 2>&1 || true
if grep -qE '[0-9]+ packages and [0-9]+ specfiles checked; 0 errors, 0 warnings' "$work/rpmlint.log"; then
	ok "rpmlint: $(grep -E 'packages and' "$work/rpmlint.log")"
else
	not_ok "rpmlint: no errors or warnings" "$(grep -vE '^=+|^$' "$work/rpmlint.log")"
fi

# ---------------------------------------------------------------- RPM contents
# rpmlist RPM: "MODE USER GROUP FLAGS PATH" per file.
rpmlist() {
	rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$1" 2>/dev/null
}
rpmlist "$RPM_MAIN" >"$work/rpm-main.list"
rpmlist "$RPM_SEL" >"$work/rpm-sel.list"
has_file() { # DESC LIST REGEX
	if grep -qE "$3" "$2"; then ok "$1"; else not_ok "$1" "$(cat "$2")"; fi
}
has_file "rpm: plugin /usr/lib64/sasl2/libsasl-xoauth2.so 0755" "$work/rpm-main.list" \
	'^-rwxr-xr-x root root  /usr/lib64/sasl2/libsasl-xoauth2\.so$'
has_file "rpm: helper /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh 0711" "$work/rpm-main.list" \
	'^-rwx--x--x root root  /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh$'
has_file "rpm: owns /usr/libexec/sasl-xoauth2" "$work/rpm-main.list" '^drwxr-xr-x root root  /usr/libexec/sasl-xoauth2$'
has_file "rpm: tool /usr/bin/sasl-xoauth2-tool 0755" "$work/rpm-main.list" '^-rwxr-xr-x root root  /usr/bin/sasl-xoauth2-tool$'
has_file "rpm: /etc/sasl-xoauth2.conf 0600 %config(noreplace)" "$work/rpm-main.list" \
	'^-rw------- root root cn /etc/sasl-xoauth2\.conf$'
for page in man1/sasl-xoauth2-tool.1 man5/sasl-xoauth2.conf.5 man8/sasl-xoauth2-refresh.8; do
	has_file "rpm: man page /usr/share/man/$page.gz 0644" "$work/rpm-main.list" \
		"^-rw-r--r-- root root d /usr/share/man/${page//./\\.}\\.gz$"
done
has_file "rpm: bash completion" "$work/rpm-main.list" '^-rw-r--r-- root root  /usr/share/bash-completion/completions/sasl-xoauth2-tool$'
has_file "rpm: zsh completion (site-functions)" "$work/rpm-main.list" '^-rw-r--r-- root root  /usr/share/zsh/site-functions/_sasl-xoauth2-tool$'
has_file "rpm: fish completion" "$work/rpm-main.list" '^-rw-r--r-- root root  /usr/share/fish/vendor_completions\.d/sasl-xoauth2-tool\.fish$'
has_file "rpm: licenses incl. bundled crates (LICENSE.dependencies, cargo-vendor.txt)" "$work/rpm-main.list" \
	'l /usr/share/licenses/sasl-xoauth2/cargo-vendor\.txt$'
if unexpected=$(awk '$NF !~ /^\/usr\/(lib\/\.build-id|lib64\/sasl2|libexec\/sasl-xoauth2|bin|share\/(man|doc|licenses|bash-completion|zsh|fish))(\/|$)|^\/etc\/sasl-xoauth2\.conf$/' "$work/rpm-main.list") &&
	[[ -z $unexpected ]]; then
	ok "rpm: main package has no file outside the expected places"
else
	not_ok "rpm: main package has no file outside the expected places" "$unexpected"
fi
recommends=$(rpm -qp --recommends "$RPM_MAIN" 2>/dev/null)
if [[ $recommends == "(sasl-xoauth2-selinux if selinux-policy-targeted)" ]]; then
	ok "rpm: main package Recommends: $recommends"
else
	not_ok "rpm: main package Recommends: (sasl-xoauth2-selinux if selinux-policy-targeted)" "got: $recommends"
fi
if [[ -z $(rpm -qp --scripts "$RPM_MAIN" 2>/dev/null) ]]; then
	ok "rpm: main package has no scriptlets"
else
	not_ok "rpm: main package has no scriptlets" "$(rpm -qp --scripts "$RPM_MAIN")"
fi
mkdir -p "$work/rpmroot"
(cd "$work/rpmroot" && rpm2cpio "$RPM_MAIN" | cpio -idm --quiet)
if ! readelf -lW "$work/rpmroot/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh" | grep -q 'INTERP'; then
	ok "rpm: the helper is static (no program interpreter)"
else
	not_ok "rpm: the helper is static (no program interpreter)"
fi

# selinux subpackage
[[ $(rpm -qp --qf '%{ARCH}' "$RPM_SEL" 2>/dev/null) == noarch ]] && ok "rpm: -selinux is noarch" || not_ok "rpm: -selinux is noarch"
has_file "rpm: -selinux: /usr/share/selinux/packages/targeted/sasl_xoauth2.pp.bz2" "$work/rpm-sel.list" \
	'^-rw-r--r-- root root  /usr/share/selinux/packages/targeted/sasl_xoauth2\.pp\.bz2$'
has_file "rpm: -selinux: /usr/share/selinux/devel/include/distributed/sasl_xoauth2.if" "$work/rpm-sel.list" \
	'^-rw-r--r-- root root  /usr/share/selinux/devel/include/distributed/sasl_xoauth2\.if$'
has_file "rpm: -selinux: %ghost /var/lib/selinux/targeted/active/modules/200/sasl_xoauth2" "$work/rpm-sel.list" \
	' g /var/lib/selinux/targeted/active/modules/200/sasl_xoauth2$'
reqs=$(rpm -qp --qf '[%{REQUIREFLAGS:deptype} %{REQUIRENAME}\n]' "$RPM_SEL" 2>/dev/null)
grep -qx 'manual selinux-policy-targeted' <<<"$reqs" && ok "rpm: -selinux Requires: selinux-policy-targeted" ||
	not_ok "rpm: -selinux Requires: selinux-policy-targeted" "$reqs"
grep -qx 'post selinux-policy-targeted' <<<"$reqs" && ok "rpm: -selinux Requires(post): selinux-policy-targeted" ||
	not_ok "rpm: -selinux Requires(post): selinux-policy-targeted" "$reqs"
mkdir -p "$work/selroot"
(cd "$work/selroot" && rpm2cpio "$RPM_SEL" | cpio -idm --quiet)
bzcat "$work/selroot/usr/share/selinux/packages/targeted/sasl_xoauth2.pp.bz2" >"$work/sasl_xoauth2.pp"
if semodule_unpackage "$work/sasl_xoauth2.pp" "$work/sel.mod" "$work/sel.fc" >/dev/null 2>&1 &&
	grep -q sasl_xoauth2_token_t "$work/sel.fc"; then
	ok "rpm: -selinux: the .pp.bz2 is a module package with the file contexts"
else
	not_ok "rpm: -selinux: the .pp.bz2 is a module package with the file contexts"
fi
cmp -s "$work/selroot/usr/share/selinux/devel/include/distributed/sasl_xoauth2.if" selinux/sasl_xoauth2.if &&
	ok "rpm: -selinux: the .if is selinux/sasl_xoauth2.if" || not_ok "rpm: -selinux: the .if is selinux/sasl_xoauth2.if"

# Scriptlets: the commands Fedora's selinux-policy macros expand to.
rpm -qp --scripts "$RPM_SEL" >"$work/scripts" 2>/dev/null
# script SECTION: the body of one scriptlet ("preinstall", "postinstall", ...).
script() { awk -v s="$1" '/^[a-z]+ scriptlet/ { on = ($1 == s) ; next } on' "$work/scripts"; }
scriptlet_has() { # SECTION DESC FIXED-STRING...
	local sec=$1 d=$2 body miss=
	shift 2
	body=$(script "$sec")
	for s in "$@"; do grep -qF -- "$s" <<<"$body" || miss+="'$s' "; done
	if [[ -z $miss ]]; then ok "rpm: -selinux %$sec: $d"; else not_ok "rpm: -selinux %$sec: $d" "missing: $miss
$body"; fi
}
scriptlet_has preinstall "%selinux_relabel_pre -s targeted: saves file_contexts" \
	'_policytype=targeted' 'cp -f /etc/selinux/${SELINUXTYPE}/contexts/files/file_contexts /var/lib/rpm-state/file_contexts.pre'
scriptlet_has postinstall "%selinux_modules_install -s targeted: semodule -X 200 -i, load_policy" \
	'_policytype=targeted' \
	'/usr/sbin/semodule -n -s ${_policytype} -X 200 -i /usr/share/selinux/packages/targeted/sasl_xoauth2.pp.bz2' \
	'/usr/sbin/load_policy'
scriptlet_has postuninstall "%selinux_modules_uninstall -s targeted on erase only" \
	'if [ $1 -eq 0 ]' '/usr/sbin/semodule -n -X 200 -s ${_policytype} -r sasl_xoauth2' '/usr/sbin/load_policy'
scriptlet_has posttrans "%selinux_relabel_post -s targeted: fixfiles -C restore" \
	'/usr/sbin/fixfiles -C /var/lib/rpm-state/file_contexts.pre restore'
if grep -q '%' "$work/scripts"; then
	not_ok "rpm: -selinux scriptlets contain no unexpanded macro" "$(grep '%' "$work/scripts")"
else
	ok "rpm: -selinux scriptlets contain no unexpanded macro"
fi
for sec in preinstall postinstall postuninstall posttrans; do
	if out=$(script "$sec" | sh -n 2>&1); then ok "rpm: -selinux %$sec is valid sh"; else not_ok "rpm: -selinux %$sec is valid sh" "$out"; fi
done

# ---------------------------------------------------------------- .deb contents
dpkg-deb -c "$PKG_DEB" | awk '{ print $1, $2, $NF }' | sed 's# \./# /#' >"$work/deb.list"
has_file "deb: plugin $PLUGIN_DIR/libsasl-xoauth2.so 0644 (Debian: shared objects are not executable)" "$work/deb.list" \
	"^-rw-r--r-- root/root ${PLUGIN_DIR//./\\.}/libsasl-xoauth2\\.so$"
has_file "deb: helper /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh 0711" "$work/deb.list" \
	'^-rwx--x--x root/root /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh$'
has_file "deb: tool /usr/bin/sasl-xoauth2-tool 0755" "$work/deb.list" '^-rwxr-xr-x root/root /usr/bin/sasl-xoauth2-tool$'
has_file "deb: /etc/sasl-xoauth2.conf 0600" "$work/deb.list" '^-rw------- root/root /etc/sasl-xoauth2\.conf$'
for page in man1/sasl-xoauth2-tool.1 man5/sasl-xoauth2.conf.5 man8/sasl-xoauth2-refresh.8; do
	has_file "deb: man page /usr/share/man/$page.gz" "$work/deb.list" "^-rw-r--r-- root/root /usr/share/man/${page//./\\.}\\.gz$"
done
has_file "deb: bash completion" "$work/deb.list" ' /usr/share/bash-completion/completions/sasl-xoauth2-tool$'
has_file "deb: zsh completion (vendor-completions)" "$work/deb.list" ' /usr/share/zsh/vendor-completions/_sasl-xoauth2-tool$'
has_file "deb: fish completion" "$work/deb.list" ' /usr/share/fish/vendor_completions\.d/sasl-xoauth2-tool\.fish$'
has_file "deb: AppArmor profile /etc/apparmor.d/sasl-xoauth2-refresh" "$work/deb.list" '^-rw-r--r-- root/root /etc/apparmor\.d/sasl-xoauth2-refresh$'
has_file "deb: smtp profile snippet /etc/apparmor.d/local/postfix-smtp-sasl-xoauth2" "$work/deb.list" \
	' /etc/apparmor\.d/local/postfix-smtp-sasl-xoauth2$'
mkdir -p "$work/debctrl"
dpkg-deb -e "$PKG_DEB" "$work/debctrl"
for f in /etc/sasl-xoauth2.conf /etc/apparmor.d/sasl-xoauth2-refresh /etc/apparmor.d/local/postfix-smtp-sasl-xoauth2; do
	grep -qx "$f" "$work/debctrl/conffiles" && ok "deb: conffile $f" || not_ok "deb: conffile $f" "$(cat "$work/debctrl/conffiles")"
done

# ---------------------------------------------------------------- install, use, purge
# File lists of the places a package can touch, before install and after purge.
snapshot() {
	find /etc /usr /var/lib /var/cache/apparmor /var/spool/postfix -xdev \
		\( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/systemd -o -path /var/lib/ucf \
		-o -path /var/lib/postfix -o -path /var/spool/postfix/active -o -path /var/spool/postfix/incoming \
		-o -path /var/spool/postfix/deferred -o -path /var/spool/postfix/pid \) -prune -o \
		-printf '%M %u %g %p\n' 2>/dev/null | sort
}
snapshot >"$work/before.list"
[[ -e $PLUGIN_DIR/libsasl-xoauth2.so ]] && die "$PLUGIN_DIR/libsasl-xoauth2.so exists before the package is installed (make uninstall?)"
purged=0
purge() { ((purged)) || { dpkg --purge sasl-xoauth2 >"$work/purge.log" 2>&1; purged=1; }; }
trap 'purge; [[ ${KEEP_WORKDIR:-0} == 1 ]] || rm -rf "$work"' EXIT

if dpkg -i "$PKG_DEB" >"$work/install.log" 2>&1; then
	ok "dpkg -i $(basename "$PKG_DEB")"
else
	not_ok "dpkg -i $(basename "$PKG_DEB")" "$(cat "$work/install.log")"
	summary_and_exit
fi
out=$(env -u SASL_PATH saslpluginviewer -c 2>&1 || true)
for mech in XOAUTH2 OAUTHBEARER; do
	# "Plugin "sasl-xoauth2" [loaded], ..." followed by "SASL mechanism: MECH, ..."
	if awk -v m="$mech" '/^Plugin "sasl-xoauth2" \[loaded\]/ { p = 1; next }
		p && $0 ~ "SASL mechanism: " m "," { found = 1 } { p = 0 } END { exit !found }' <<<"$out"; then
		ok "saslpluginviewer -c lists $mech from the installed plugin"
	else
		not_ok "saslpluginviewer -c lists $mech from the installed plugin" "$out"
	fi
done
# --check on the installed layout: finds the plugin, the helper and the
# config where the package put them.  A token that does not exist is
# reported as such (exit status non-zero), not as a crash.
mkdir -p "$work/tokens"
check_out=$(/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh --check "$work/tokens/none.json" 2>&1) && rc=0 || rc=$?
echo "$check_out" >"$work/check.log"
miss=
for s in "ok   config: /etc/sasl-xoauth2.conf " "ok   plugin: $PLUGIN_DIR/libsasl-xoauth2.so " \
	"ok   helper: /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh (the default): static executable"; do
	grep -qF -- "$s" <<<"$check_out" || miss+="'$s' "
done
if [[ -z $miss ]] && ((rc != 0 && rc < 100)) && ! grep -qi 'panicked' <<<"$check_out"; then
	ok "installed sasl-xoauth2-refresh --check runs and finds the installed config, plugin and static helper (exit $rc for the missing token)"
else
	not_ok "installed sasl-xoauth2-refresh --check runs and finds the installed config, plugin and static helper" "exit $rc; missing: $miss
$check_out"
fi
if /usr/bin/sasl-xoauth2-tool --help >/dev/null 2>&1; then ok "installed sasl-xoauth2-tool runs"; else not_ok "installed sasl-xoauth2-tool runs"; fi
[[ -f /etc/apparmor.d/local/sasl-xoauth2-refresh ]] && ok "postinst created the AppArmor local include /etc/apparmor.d/local/sasl-xoauth2-refresh" ||
	not_ok "postinst created the AppArmor local include /etc/apparmor.d/local/sasl-xoauth2-refresh"
if command -v apparmor_parser >/dev/null && out=$(apparmor_parser -Q -K /etc/apparmor.d/sasl-xoauth2-refresh 2>&1); then
	ok "the installed AppArmor profile parses (apparmor_parser -Q)"
else
	not_ok "the installed AppArmor profile parses (apparmor_parser -Q)" "${out:-apparmor_parser missing}"
fi

purge
if grep -q 'sasl-xoauth2' <(dpkg-query -W -f='${Package} ${Status}\n' 2>/dev/null); then
	not_ok "dpkg --purge sasl-xoauth2" "$(cat "$work/purge.log")"
else
	ok "dpkg --purge sasl-xoauth2"
fi
snapshot >"$work/after.list"
if diff -u "$work/before.list" "$work/after.list" >"$work/purge.diff"; then
	ok "after dpkg --purge the file lists of /etc /usr /var/lib /var/cache/apparmor /var/spool/postfix are as before"
else
	not_ok "after dpkg --purge the file lists of /etc /usr /var/lib /var/cache/apparmor /var/spool/postfix are as before" \
		"$(grep -E '^[-+][^-+]' "$work/purge.diff")"
fi

summary_and_exit
