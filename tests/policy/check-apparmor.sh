#!/usr/bin/env bash
# Offline check of the sasl-xoauth2 AppArmor policy (apparmor/).
#
# Compiles the helper profile and the Postfix smtp snippet (wrapped into a
# test "postfix-smtp" profile) with apparmor_parser against the installed
# abstractions in /etc/apparmor.d, for the AppArmor 3.0 ABI, WITHOUT loading
# anything into the kernel (-Q) or touching the cache (-K); checks the
# preprocessed profiles (includes expanded) for the rules that matter; and
# shows that deliberately broken copies are rejected.
#
# Debian 12 packages: apparmor (apparmor_parser, /etc/apparmor.d abstractions)
#
# Environment:
#   APPARMOR_BASE   profile base directory (/etc/apparmor.d)
#   KEEP_WORKDIR=1  keep the temporary directory (path is printed)
#
# Output: one "ok - ..." / "not ok - ..." line per assertion, then
#   policy-apparmor: N passed, M failed
# Exit status: 0 if everything passed, 1 if an assertion failed, 2 if the
# check could not run.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
src="$root/apparmor"
base=${APPARMOR_BASE:-/etc/apparmor.d}
HELPER_PROFILE="$src/usr.libexec.sasl-xoauth2.sasl-xoauth2-refresh"
SNIPPET="$src/local/postfix-smtp-sasl-xoauth2"
HELPER_NAME=sasl-xoauth2-refresh
# Default helper path (common/src/config.rs DEFAULT_REFRESH_HELPER) and the
# Debian /usr/lib variant.
HELPER_PATHS=(/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh /usr/lib/sasl-xoauth2/sasl-xoauth2-refresh)

NAME=policy-apparmor
# shellcheck source=tests/policy/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

PARSER=$(command -v apparmor_parser || true)
[[ -n $PARSER ]] || PARSER=$([[ -x /sbin/apparmor_parser ]] && echo /sbin/apparmor_parser || true)
[[ -n $PARSER ]] || die "apparmor_parser not found (Debian: apt-get install apparmor)"
for t in awk grep sed mktemp; do
	command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
done
[[ -d $base/abstractions && -d $base/tunables ]] || die "no AppArmor abstractions/tunables in $base (Debian: apparmor)"
ABI=$base/abi/3.0
[[ -r $ABI ]] || die "no AppArmor 3.0 ABI file at $ABI"
[[ -r $HELPER_PROFILE ]] || die "missing $HELPER_PROFILE"
[[ -r $SNIPPET ]] || die "missing $SNIPPET"

make_workdir


# Compile only: -Q never loads into the kernel, -K neither reads nor writes
# the cache; -M compiles for the AppArmor 3.0 ABI (all of its mediation
# classes) whatever the running kernel supports.
aa() { "$PARSER" -Q -K -b "$base" -I "$base" -M "$ABI" "$@"; }
aa_pre() { "$PARSER" -p -b "$base" -I "$base" -M "$ABI" "$@"; }

# The snippet, wrapped into a profile shaped like apparmor's postfix-smtp.
wrap_snippet() { # SNIPPET_PATH OUTPUT [EXTRA_RULE]
	cat >"$2" <<EOF
abi <abi/3.0>,
include <tunables/global>
profile postfix-smtp /usr/lib/postfix/{bin/,sbin/,}smtp {
  include <abstractions/base>
  include <abstractions/nameservice>
  include <abstractions/postfix-common>
  include "$1"
${3:-}
}
EOF
}
wrap_snippet "$SNIPPET" "$work/test-postfix-smtp"

compiles() { # DESC FILES...
	local d=$1 out
	shift
	if out=$(aa "$@" 2>&1); then
		ok "$d"
	else
		not_ok "$d" "$out"
	fi
}
compiles "helper profile compiles (apparmor_parser -Q -K, ABI 3.0)" "$HELPER_PROFILE"
compiles "smtp snippet compiles inside a postfix-smtp test profile" "$work/test-postfix-smtp"
compiles "helper profile and smtp test profile compile together" "$HELPER_PROFILE" "$work/test-postfix-smtp"
if out=$(aa --warn=all --Werror "$HELPER_PROFILE" 2>&1); then
	ok "helper profile compiles with all parser warnings as errors"
else
	not_ok "helper profile compiles with all parser warnings as errors" "$out"
fi

# ---------------------------------------------------------------- content
# Preprocessed text (includes and abstractions expanded), comments dropped.
aa_pre "$HELPER_PROFILE" 2>/dev/null | sed -e 's/#.*$//' -e '/^[[:space:]]*$/d' >"$work/helper.pre" ||
	die "apparmor_parser -p failed on the helper profile"
aa_pre "$work/test-postfix-smtp" 2>/dev/null | sed -e 's/#.*$//' -e '/^[[:space:]]*$/d' >"$work/smtp.pre" ||
	die "apparmor_parser -p failed on the smtp test profile"
# Rule lines of our own files (without the abstractions), for rules whose
# meaning depends on what we wrote.
sed -e 's/#.*$//' -e '/^[[:space:]]*$/d' "$HELPER_PROFILE" >"$work/helper.own"
sed -e 's/#.*$//' -e '/^[[:space:]]*$/d' "$SNIPPET" >"$work/snippet.own"

has() { # DESC FILE ERE
	if grep -Eq -- "$3" "$2"; then ok "$1"; else not_ok "$1" "no line matching: $3"; fi
}
lacks() { # DESC FILE ERE
	local m
	if m=$(grep -En -- "$3" "$2"); then not_ok "$1" "$m"; else ok "$1"; fi
}

# Attachment: the profile attaches to the helper's installed paths.
attach=$(awk '$1 == "profile" && $2 == "'"$HELPER_NAME"'" { print $3 }' "$work/helper.pre")
if [[ -n $attach ]]; then
	expanded=$(eval "echo $attach")
	for p in "${HELPER_PATHS[@]}"; do
		if [[ " $expanded " == *" $p "* ]]; then
			ok "profile $HELPER_NAME attaches to $p"
		else
			not_ok "profile $HELPER_NAME attaches to $p" "attachment: $attach"
		fi
	done
else
	not_ok "profile $HELPER_NAME is declared with an attachment path" "$(grep -m3 profile "$work/helper.pre")"
fi

has "helper: deny capability (no capabilities at all)" "$work/helper.pre" '^[[:space:]]*deny capability,'
lacks "helper: no capability is allowed (including abstractions)" "$work/helper.pre" '^[[:space:]]*(audit[[:space:]]+)?capability'
# Network: exactly these rules, from any source (abstractions included).
net=$(grep -E '^[[:space:]]*(audit[[:space:]]+)?network' "$work/helper.pre" | sed 's/^[[:space:]]*//; s/[[:space:]]*,$//' | sort -u | tr '\n' ';')
want="network inet dgram;network inet stream;network inet6 dgram;network inet6 stream;network netlink raw;"
if [[ $net == "$want" ]]; then
	ok "helper: network limited to inet/inet6 stream (HTTPS), inet/inet6 dgram + netlink raw (name resolution)"
else
	not_ok "helper: network limited to inet/inet6 stream (HTTPS), inet/inet6 dgram + netlink raw (name resolution)" "got: $net"
fi
if m=$(grep -En '^[[:space:]]*(audit[[:space:]]+)?network([[:space:]]|,)' "$work/helper.pre" | grep -v 'netlink raw' |
	grep -E '[[:space:]](raw|packet)[[:space:]]*,|network[[:space:]]*,'); then
	not_ok "helper: no raw/packet sockets and no blanket network rule" "$m"
else
	ok "helper: no raw/packet sockets and no blanket network rule"
fi
has "helper: deny /** x (executes nothing)" "$work/helper.pre" '^[[:space:]]*(audit[[:space:]]+)?deny[[:space:]]+/\*\*[[:space:]]+x,'
lacks "helper: no exec transition rules (Px/Cx/Ux/px/cx/ux) in the profile" "$work/helper.own" '[[:space:]][pPcCuU]x[[:space:]]*(,|->)'
lacks "helper: no ix in the profile itself" "$work/helper.own" '[[:space:]][a-z]*ix[[:space:]]*,'
has "helper: token directories rk (open for fsync, flock)" "$work/helper.own" '^[[:space:]]*@\{sasl_xoauth2_token_dirs\}/[[:space:]]+rk,'
has "helper: owner rwk on files in the token directories" "$work/helper.own" '^[[:space:]]*owner[[:space:]]+@\{sasl_xoauth2_token_dirs\}/\*[[:space:]]+rwk,'
has "helper: token directories are /etc/tokens and /var/spool/postfix/etc/tokens" "$work/helper.pre" \
	'^@\{sasl_xoauth2_token_dirs\}[[:space:]]*=[[:space:]]*/etc/tokens[[:space:]]+/var/spool/postfix/etc/tokens[[:space:]]*$'
has "helper: reads the configuration file" "$work/helper.own" '^[[:space:]]*/etc/sasl-xoauth2\.conf[[:space:]]+r,'
has "helper: reads CA certificates (abstractions/ssl_certs)" "$work/helper.own" '^[[:space:]]*include[[:space:]]+<abstractions/ssl_certs>'
has "helper: denies the Postfix queue" "$work/helper.own" '^[[:space:]]*(audit[[:space:]]+)?deny[[:space:]]+/var/spool/postfix/\{active,.*\}/\*\*[[:space:]]+rwlk,'
# No write to anything under /var/spool/postfix except the token directory.
lacks "helper: writes nothing else under /var/spool/postfix" "$work/helper.own" '^[[:space:]]*(owner[[:space:]]+)?/var/spool/postfix/[^[:space:]]*[[:space:]]+[a-z]*w'

has "smtp: Px to the helper profile" "$work/snippet.own" \
	"^[[:space:]]*/usr/\{lib,libexec,local/libexec\}/sasl-xoauth2/sasl-xoauth2-refresh[[:space:]]+Px[[:space:]]+->[[:space:]]+$HELPER_NAME,"
has "smtp: reads token files (and may take a shared lock probe: k)" "$work/snippet.own" '^[[:space:]]*/\{,var/spool/postfix/\}etc/tokens/\*[[:space:]]+rk,'
has "smtp: deny write/link on token files" "$work/snippet.own" '^[[:space:]]*(audit[[:space:]]+)?deny[[:space:]]+/\{,var/spool/postfix/\}etc/tokens/\*\*[[:space:]]+wl,'
has "smtp: deny write on token directories" "$work/snippet.own" '^[[:space:]]*(audit[[:space:]]+)?deny[[:space:]]+/\{,var/spool/postfix/\}etc/tokens/[[:space:]]+w,'
lacks "smtp: no allow rule with w/a/l/x on tokens in the snippet" "$work/snippet.own" '^[[:space:]]*(owner[[:space:]]+)?/[^[:space:]]*tokens[^[:space:]]*[[:space:]]+[a-z]*[walx]'
# Secrets of the split layout (issue 16): smtp gets nothing, the helper
# reads and replaces them.
has "smtp: audit deny mrwlk on secrets directories and everything in them" "$work/snippet.own" \
	'^[[:space:]]*audit[[:space:]]+deny[[:space:]]+/\{,var/spool/postfix/\}etc/tokens/secrets/\{,\*\*\}[[:space:]]+mrwlk,'
has "smtp: audit deny mrwlk on the client_secret_file" "$work/snippet.own" \
	'^[[:space:]]*audit[[:space:]]+deny[[:space:]]+/\{,var/spool/postfix/\}etc/sasl-xoauth2\.secret[[:space:]]+mrwlk,'
lacks "smtp: no allow rule on secrets in the snippet" "$work/snippet.own" '^[[:space:]]*(owner[[:space:]]+)?/[^[:space:]]*secret'
# The deny globs (brace-expanded; ** as a shell glob) cover the conventional
# secrets paths as smtp's profile sees them (from the namespace root).
deny_globs=$(awk '$1 == "audit" && $2 == "deny" && $3 ~ /secret/ { print $3 }' "$work/snippet.own")
for p in /etc/tokens/secrets/ /etc/tokens/secrets/alice@gmail.com /etc/tokens/secrets/.alice@gmail.com.tmp \
	/var/spool/postfix/etc/tokens/secrets/ /var/spool/postfix/etc/tokens/secrets/alice@gmail.com \
	/etc/sasl-xoauth2.secret /var/spool/postfix/etc/sasl-xoauth2.secret; do
	hit=
	for g in $deny_globs; do
		for e in $(eval "echo $g"); do
			# shellcheck disable=SC2053
			[[ $p == ${e//\*\*/*} ]] && hit=$e
		done
	done
	if [[ -n $hit ]]; then ok "smtp: $p is denied ($hit)"; else not_ok "smtp: $p is denied" "deny globs: $deny_globs"; fi
done
has "helper: secrets directories are /etc/tokens/secrets and /var/spool/postfix/etc/tokens/secrets" "$work/helper.pre" \
	'^@\{sasl_xoauth2_secret_dirs\}[[:space:]]*=[[:space:]]*/etc/tokens/secrets[[:space:]]+/var/spool/postfix/etc/tokens/secrets[[:space:]]*$'
has "helper: client_secret_file paths are /etc/sasl-xoauth2.secret and its chroot copy" "$work/helper.pre" \
	'^@\{sasl_xoauth2_secret_files\}[[:space:]]*=[[:space:]]*/etc/sasl-xoauth2\.secret[[:space:]]+/var/spool/postfix/etc/sasl-xoauth2\.secret[[:space:]]*$'
has "helper: reads secrets directories (open for fsync)" "$work/helper.own" '^[[:space:]]*@\{sasl_xoauth2_secret_dirs\}/[[:space:]]+r,'
has "helper: owner rw on files in secrets directories (read, create, rename)" "$work/helper.own" '^[[:space:]]*owner[[:space:]]+@\{sasl_xoauth2_secret_dirs\}/\*[[:space:]]+rw,'
has "helper: reads the client_secret_file" "$work/helper.own" '^[[:space:]]*@\{sasl_xoauth2_secret_files\}[[:space:]]+r,'
lacks "helper: never writes the client_secret_file" "$work/helper.own" '^[[:space:]]*(owner[[:space:]]+)?@\{sasl_xoauth2_secret_files\}[[:space:]]+[a-z]*[wal]'
has "smtp: reads the configuration file" "$work/snippet.own" '^[[:space:]]*/etc/sasl-xoauth2\.conf[[:space:]]+r,'
has "smtp: maps the plugin library" "$work/snippet.own" 'sasl2/libsasl-xoauth2\.so\*[[:space:]]+mr,'
has "smtp: may signal the helper (kill, term)" "$work/snippet.own" "signal \\(send\\) set=\\(kill, term\\) peer=$HELPER_NAME,"
has "helper: accepts kill/term from postfix-smtp" "$work/helper.own" 'signal \(receive\) set=\(kill, term\) peer=postfix-smtp,'
has "helper: may use its stdin, the handoff socket (unix send/receive, stream only)" "$work/helper.own" '^[[:space:]]*unix[[:space:]]+\(send, receive\)[[:space:]]+type=stream,'
if grep -E '^[[:space:]]*unix' "$work/helper.own" | grep -qvE '^[[:space:]]*unix[[:space:]]+\(send, receive\)[[:space:]]+type=stream,'; then
	not_ok "helper: no other unix rule of its own (no connect, bind, listen, accept)" "$(grep -E '^[[:space:]]*unix' "$work/helper.own")"
else
	ok "helper: no other unix rule of its own (no connect, bind, listen, accept)"
fi
# Cross-check: the Px target names the helper profile.
if grep -Eq "^[[:space:]]*profile[[:space:]]+$HELPER_NAME[[:space:]]" "$work/helper.pre"; then
	ok "Px target $HELPER_NAME is the profile name in the helper profile"
else
	not_ok "Px target $HELPER_NAME is the profile name in the helper profile"
fi

# ---------------------------------------------------------------- negative tests
rejects() { # DESC FILE
	local d=$1 f=$2 out
	if out=$(aa "$f" 2>&1); then
		not_ok "rejected: $d (apparmor_parser accepted it)"
	else
		ok "rejected: $d ($(grep -m1 -iE 'error|conflict|invalid' <<<"$out" | sed 's/^AppArmor parser error for [^ ]* //' || true))"
	fi
}
# 1. Syntax: the helper profile without its closing brace.
head -c -2 "$HELPER_PROFILE" >"$work/broken-syntax"
[[ $(tail -c 1 "$work/broken-syntax") != "}" ]] || die "could not build the broken-syntax copy"
rejects "helper profile with a missing closing brace" "$work/broken-syntax"
# 2. Unknown capability name.
sed 's/^  deny capability,/  capability no_such_capability,/' "$HELPER_PROFILE" >"$work/broken-cap"
grep -q no_such_capability "$work/broken-cap" || die "could not build the broken-cap copy"
rejects "helper profile allowing an unknown capability" "$work/broken-cap"
# 3. Contradictory token file rule (w and a are exclusive).
sed 's#^  owner @{sasl_xoauth2_token_dirs}/\* rwk,#  owner @{sasl_xoauth2_token_dirs}/* rwak,#' "$HELPER_PROFILE" >"$work/broken-perms"
grep -q rwak "$work/broken-perms" || die "could not build the broken-perms copy"
rejects "helper profile with conflicting w and a on token files" "$work/broken-perms"
# 4. smtp running the helper inside its own profile (ix) as well as Px: the
#    conflicting exec modes are refused, so Px cannot be silently weakened.
wrap_snippet "$SNIPPET" "$work/broken-ix" "  /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh ix,"
rejects "smtp snippet plus ix on the helper (conflicting exec modes)" "$work/broken-ix"
# 5. Missing abstraction.
sed 's#^  include <abstractions/base>#  include <abstractions/sasl-xoauth2-does-not-exist>#' "$HELPER_PROFILE" >"$work/broken-include"
grep -q does-not-exist "$work/broken-include" || die "could not build the broken-include copy"
rejects "helper profile including a missing abstraction" "$work/broken-include"

summary_and_exit
