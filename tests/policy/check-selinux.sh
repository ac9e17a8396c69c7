#!/usr/bin/env bash
# Offline check of the sasl-xoauth2 SELinux module (selinux/sasl_xoauth2.*).
#
# Builds the module with the distribution's policy devel Makefile, links and
# expands it with the distribution's base + postfix policy modules
# (semodule_expand enforces every neverallow), also with the complete
# distribution policy, then asserts with sesearch/seinfo which rules are and
# are not in the expanded policy, looks up file labels in the combined
# file_contexts, and proves that the neverallow rules reject deliberately
# violating copies of the module.
#
# Every policy here is Debian's (refpolicy).  The DISTRO=redhat step links
# the module's Fedora branch with Debian's policy plus a small stand-in for
# Fedora's every-domain rules; it cannot prove anything about Fedora's or
# RHEL's real policy (see docs/policies.md, "What holds where").
#
# Nothing is installed: all work happens in a temporary directory; neither
# /etc/selinux nor any policy store is touched, and SELinux need not be
# enabled.
#
# Debian 12 packages: selinux-policy-dev selinux-policy-default checkpolicy
#   semodule-utils setools selinux-utils make m4 bzip2
#
# Environment:
#   SELINUX_DEVEL_MAKEFILE  devel Makefile (/usr/share/selinux/devel/Makefile)
#   SELINUX_DISTRO_POLICY   directory of the distribution's policy modules
#                           (/usr/share/selinux/default, *.pp or *.pp.bz2)
#   SELINUX_SKIP_FULL=1     skip linking with the complete distribution policy
#   KEEP_WORKDIR=1          keep the temporary directory (path is printed)
#
# Output: one "ok - ..." / "not ok - ..." line per assertion, then
#   policy-selinux: N passed, M failed
# Exit status: 0 if everything passed, 1 if an assertion failed, 2 if the
# check could not run (missing tool or input).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
src="$root/selinux"
devel_mk=${SELINUX_DEVEL_MAKEFILE:-/usr/share/selinux/devel/Makefile}
distro=${SELINUX_DISTRO_POLICY:-/usr/share/selinux/default}
# base + postfix, and what postfix.pp requires to link.
modules_min=(base postfix mta hostname)

MOD=sasl_xoauth2
HELPER=sasl_xoauth2_refresh_t
HELPER_EXEC=sasl_xoauth2_refresh_exec_t
TOKEN=sasl_xoauth2_token_t
SECRET=sasl_xoauth2_secret_t
CONF=sasl_xoauth2_conf_t
SMTP=postfix_smtp_t

NAME=policy-selinux
# shellcheck source=tests/policy/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

# ---------------------------------------------------------------- tools
missing=()
for t in make m4 checkmodule semodule_package semodule_link semodule_expand \
	semodule_unpackage sesearch seinfo sefcontext_compile selabel_lookup \
	bzcat awk sort mktemp; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if ((${#missing[@]})); then
	die "missing tools: ${missing[*]} (Debian: apt-get install selinux-policy-dev selinux-policy-default checkpolicy semodule-utils setools selinux-utils make m4 bzip2)"
fi
[[ -r $devel_mk ]] || die "no policy devel Makefile at $devel_mk (Debian: selinux-policy-dev, Fedora: selinux-policy-devel)"
for f in te fc if; do
	[[ -r $src/$MOD.$f ]] || die "missing $src/$MOD.$f"
done

make_workdir


# ---------------------------------------------------------------- inputs
# Distribution modules, decompressed into $work/distro.
mkdir -p "$work/distro"
fetch_module() { # name
	local m=$1
	if [[ -r $distro/$m.pp.bz2 ]]; then
		bzcat "$distro/$m.pp.bz2" >"$work/distro/$m.pp"
	elif [[ -r $distro/$m.pp ]]; then
		cp "$distro/$m.pp" "$work/distro/$m.pp"
	else
		die "distribution policy module $m not found in $distro (Debian: selinux-policy-default)"
	fi
}
for m in "${modules_min[@]}"; do fetch_module "$m"; done

# build_module DIR [DISTRO]: compile DIR/$MOD.pp with the devel Makefile
# (DISTRO=redhat selects the module's ifdef(distro_redhat) branch).
build_module() {
	(cd "$1" && make -f "$devel_mk" ${2:+DISTRO=$2} "$MOD.pp") >"$1/build.log" 2>&1
}
# link_expand OUT_BIN MODULE_PP MODULES...: link with distro modules (names)
# or other module packages (paths), expand (neverallow rules are checked
# here) into a kernel policy file.
link_expand() {
	local out=$1 pp=$2
	shift 2
	local args=()
	for m in "$@"; do
		if [[ $m == */* ]]; then args+=("$m"); else args+=("$work/distro/$m.pp"); fi
	done
	semodule_link -o "$out.lnk" "${args[@]}" "$pp" >"$out.log" 2>&1 &&
		semodule_expand "$out.lnk" "$out" >>"$out.log" 2>&1
}

# ---------------------------------------------------------------- build
mkdir -p "$work/build"
cp "$src/$MOD.te" "$src/$MOD.fc" "$src/$MOD.if" "$work/build/"
if build_module "$work/build" && [[ -s $work/build/$MOD.pp ]]; then
	ok "module builds with $devel_mk"
else
	not_ok "module builds with $devel_mk" "$(cat "$work/build/build.log")"
	summary_and_exit
fi
PP=$work/build/$MOD.pp

# The Fedora/RHEL branch (ifdef distro_redhat).  This links against
# DEBIAN's policy, so it proves nothing about Fedora's or RHEL's: it cannot
# see their domain.te, their macro expansions or their type aliases, and the
# module is re-checked against those policies outside CI.  What it does show:
# the branch compiles, and its neverallow rules hold next to a stand-in
# module that grants every domain what Fedora's domain.te grants beyond
# Debian's (written from Fedora's policy sources: abrt helper transition
# with RHEL 9's execute_no_trans, prelink under fips_mode, map on every
# file type), and still reject violations there.
mkdir -p "$work/build-redhat" "$work/fedora-sim"
cp "$src/$MOD.te" "$src/$MOD.fc" "$src/$MOD.if" "$work/build-redhat/"
cat >"$work/fedora-sim/fedora_domain_sim.te" <<'SIM'
policy_module(fedora_domain_sim, 1.0.0)
# Stand-in for Fedora/RHEL domain.te rules absent from Debian's policy.
gen_require(`
	attribute domain, file_type;
	type prelink_exec_t;
')
type abrt_helper_t;
type abrt_helper_exec_t;
domain_type(abrt_helper_t)
domain_entry_file(abrt_helper_t, abrt_helper_exec_t)
role system_r types abrt_helper_t;
# abrt_domtrans_helper(domain), with RHEL 9's domtrans_pattern expansion.
allow domain abrt_helper_exec_t:file { getattr open map read execute ioctl execute_no_trans };
allow domain abrt_helper_t:process transition;
# Booleans (not tunables) so that both states stay in the policy and
# libsepol checks the neverallow rules against both.
bool fips_mode true;
if (fips_mode) {
	allow domain prelink_exec_t:file { getattr open map read execute ioctl execute_no_trans };
}
bool domain_can_mmap_files true;
if (domain_can_mmap_files) {
	allow domain file_type:{ file lnk_file } map;
}
SIM
sim_mods=("${modules_min[@]}" prelink)
fetch_module prelink
if (cd "$work/fedora-sim" && make -f "$devel_mk" fedora_domain_sim.pp) >"$work/fedora-sim/build.log" 2>&1; then
	SIM_PP=$work/fedora-sim/fedora_domain_sim.pp
else
	die "the Fedora stand-in module does not build: $(cat "$work/fedora-sim/build.log")"
fi
if build_module "$work/build-redhat" redhat &&
	link_expand "$work/build-redhat/pol.bin" "$work/build-redhat/$MOD.pp" "${sim_mods[@]}" "$SIM_PP"; then
	ok "DISTRO=redhat branch builds, links and expands with Debian's policy plus the Fedora stand-in grants (not a Fedora check)"
else
	not_ok "DISTRO=redhat branch builds, links and expands with Debian's policy plus the Fedora stand-in grants (not a Fedora check)" \
		"$(cat "$work/build-redhat/build.log" "$work/build-redhat/pol.bin.log" 2>/dev/null)"
fi
# The Debian branch states its rules without those exceptions, so the same
# stand-in must break it: this is what the redhat branch is for.
if link_expand "$work/build-redhat/deb-sim.bin" "$work/build/$MOD.pp" "${sim_mods[@]}" "$SIM_PP"; then
	not_ok "the Debian branch is rejected next to the Fedora stand-in (so the redhat branch is needed)"
elif grep -q 'neverallow violated by' "$work/build-redhat/deb-sim.bin.log"; then
	ok "the Debian branch is rejected next to the Fedora stand-in (so the redhat branch is needed)"
else
	not_ok "the Debian branch is rejected next to the Fedora stand-in (so the redhat branch is needed)" \
		"$(cat "$work/build-redhat/deb-sim.bin.log")"
fi

POL=$work/min.bin
if link_expand "$POL" "$PP" "${modules_min[@]}"; then
	ok "links and expands with ${modules_min[*]} (neverallow rules hold)"
else
	not_ok "links and expands with ${modules_min[*]} (neverallow rules hold)" "$(cat "$POL.log")"
	summary_and_exit
fi

FULL=
if [[ ${SELINUX_SKIP_FULL:-0} != 1 ]]; then
	all=()
	for f in "$distro"/*.pp.bz2 "$distro"/*.pp; do
		[[ -e $f ]] || continue
		m=$(basename "$f")
		m=${m%.bz2}
		m=${m%.pp}
		[[ -e $work/distro/$m.pp ]] || fetch_module "$m"
		[[ $m == base ]] || all+=("$m")
	done
	FULL=$work/full.bin
	if link_expand "$FULL" "$PP" base "${all[@]}"; then
		ok "links and expands with the complete distribution policy ($((${#all[@]} + 1)) modules; neverallow rules hold)"
	else
		not_ok "links and expands with the complete distribution policy" "$(cat "$FULL.log")"
		FULL=
	fi
fi

# ---------------------------------------------------------------- helpers
# q POLICY sesearch-args...: rules, one per line, normalised.
q() {
	local p=$1
	shift
	sesearch "$p" "$@" 2>&1 | sed -e '/^$/d'
}
# present DESC POLICY sesearch-args...: at least one matching rule.
present() {
	local d=$1
	shift
	local out
	out=$(q "$@")
	# With -p, every listed permission must be granted (sesearch itself
	# matches rules granting any of them).
	local perms="" prev="" a missing=""
	for a in "$@"; do
		[[ $prev == -p ]] && perms=$a
		prev=$a
	done
	for a in ${perms//,/ }; do
		grep -qw -- "$a" <<<"$out" || missing+="$a "
	done
	if [[ -n $out && -z $missing ]] && ! grep -qi 'error\|traceback' <<<"$out"; then
		ok "$d"
	else
		not_ok "$d" "no rule ${missing:+granting $missing}for: sesearch ${*:2}${out:+
$out}"
	fi
}
# absent DESC POLICY sesearch-args...: no matching rule.
absent() {
	local d=$1
	shift
	local out
	out=$(q "$@")
	if [[ -z $out ]]; then
		ok "$d"
	else
		not_ok "$d" "unexpected rules (sesearch ${*:2}):
$out"
	fi
}
# field FIELD: extract the source (1) or target (2) type of allow rules.
field() {
	awk -v f="$1" '$1 == "allow" || $1 == "type_transition" {
		t = (f == 1) ? $2 : $3; sub(/:.*/, "", t); print t }' | sort -u
}
# no_secret_access DESC POLICY: no allow rule from smtp, directly or through
# any attribute it has (sesearch matches indirectly), to the secret type, in
# any class but filesystem: refpolicy's postfix_domain file_type:filesystem
# getattr is about filesystems labelled with a file type (statfs of a mount),
# not about the files on them.
no_secret_access() {
	local d=$1 out
	out=$(q "$2" -A -s $SMTP -t $SECRET | grep -v ':filesystem ' || true)
	if [[ -z $out ]]; then
		ok "$d"
	else
		not_ok "$d" "unexpected rules (sesearch -A -s $SMTP -t $SECRET):
$out"
	fi
}
# only DESC FIELD ALLOWED POLICY sesearch-args...: the sources/targets of the
# matching rules are a subset of ALLOWED (space separated).
only() {
	local d=$1 f=$2 allowed=$3
	shift 3
	local out got bad=
	out=$(q "$@")
	got=$(field "$f" <<<"$out")
	for t in $got; do
		[[ " $allowed " == *" $t "* ]] || bad+="$t "
	done
	if [[ -z $bad ]]; then
		ok "$d"
	else
		not_ok "$d" "not allowed: $bad
$(grep -E "$(echo "$bad" | sed 's/ *$//; s/ /|/g')" <<<"$out")"
	fi
}
# attrs DESC TYPE +ATTR... -ATTR...: type has / lacks attributes.
attrs() {
	local d=$1 ty=$2
	shift 2
	local out bad=
	out=$(seinfo "$POL" -t "$ty" -x 2>&1)
	for a in "$@"; do
		case $a in
		+*) grep -qw -- "${a#+}" <<<"$out" || bad+="missing ${a#+}; " ;;
		-*) grep -qw -- "${a#-}" <<<"$out" && bad+="has ${a#-}; " ;;
		esac
	done
	if [[ -z $bad ]]; then ok "$d"; else not_ok "$d" "$bad
$out"; fi
}

# ---------------------------------------------------------------- types
attrs "$TOKEN is an authentication file type (auth_file_type, security_file_type)" \
	"$TOKEN" +file_type +auth_file_type +security_file_type -non_auth_file_type -non_security_file_type
attrs "$SECRET is an authentication file type (auth_file_type, security_file_type)" \
	"$SECRET" +file_type +auth_file_type +security_file_type -non_auth_file_type -non_security_file_type
attrs "$CONF is a configuration file type" "$CONF" +file_type +configfile
attrs "$HELPER_EXEC is an entry point executable type" "$HELPER_EXEC" +file_type +exec_type +entry_type
attrs "$HELPER is a domain" "$HELPER" +domain
if seinfo "$POL" -r system_r -x 2>&1 | grep -qw "$HELPER"; then
	ok "system_r is authorised for $HELPER"
else
	not_ok "system_r is authorised for $HELPER"
fi

# ---------------------------------------------------------------- postfix_smtp_t: present
present "$SMTP reads token files (and may flock them: lock probe)" "$POL" -A -s $SMTP -t $TOKEN -c file -p read,open,getattr,lock
present "$SMTP searches token directories" "$POL" -A -s $SMTP -t $TOKEN -c dir -p search
present "$SMTP reads the configuration file" "$POL" -A -s $SMTP -t $CONF -c file -p read,open
present "$SMTP may execute the helper" "$POL" -A -s $SMTP -t $HELPER_EXEC -c file -p execute,open,read
present "$SMTP may transition into $HELPER" "$POL" -A -s $SMTP -t $HELPER -c process -p transition
present "type_transition $SMTP $HELPER_EXEC:process $HELPER" "$POL" -T -s $SMTP -t $HELPER_EXEC -c process -D $HELPER
present "$HELPER_EXEC is the entry point of $HELPER" "$POL" -A -s $HELPER -t $HELPER_EXEC -c file -p entrypoint
present "dontaudit $SMTP $HELPER:process { noatsecure siginh rlimitinh } (spelled-out transition)" "$POL" --dontaudit -s $SMTP -t $HELPER -c process -p noatsecure,siginh,rlimitinh
only "$SMTP gets only { getattr open read execute map } on $HELPER_EXEC" 2 "$HELPER_EXEC" "$POL" -A -s $SMTP -t $HELPER_EXEC -c file -p execute
if q "$POL" -A -s $SMTP -t $HELPER_EXEC -c file | grep -qw -e ioctl -e execute_no_trans -e write; then
	not_ok "$SMTP has no ioctl/execute_no_trans/write on $HELPER_EXEC" "$(q "$POL" -A -s $SMTP -t $HELPER_EXEC -c file)"
else
	ok "$SMTP has no ioctl/execute_no_trans/write on $HELPER_EXEC"
fi
present "$SMTP may SIGKILL the helper" "$POL" -A -s $SMTP -t $HELPER -c process -p sigkill
present "$SMTP may start the helper under no_new_privs (nnp_transition)" "$POL" -A -s $SMTP -t $HELPER -c process2 -p nnp_transition
present "$HELPER may send SIGCHLD to $SMTP" "$POL" -A -s $HELPER -t $SMTP -c process -p sigchld
present "$HELPER may use descriptors inherited from $SMTP" "$POL" -A -s $HELPER -t $SMTP -c fd -p use
present "$HELPER may read and write pipes of $SMTP" "$POL" -A -s $HELPER -t $SMTP -c fifo_file -p read,write
present "$HELPER may read (and keep across the transition) its stdin, a socket of $SMTP" "$POL" -A -s $HELPER -t $SMTP -c unix_stream_socket -p read,write
perms=$(q "$POL" -A -s $HELPER -t $SMTP -c unix_stream_socket | sed -E 's/^[^:]*:unix_stream_socket *//; s/[{};]//g' | tr ' ' '\n' | grep . | sort -u | tr '\n' ' ')
if [[ $perms == "read write " ]]; then
	ok "$HELPER gets only { read write } on sockets of $SMTP (no getattr, setopt, shutdown, connectto, ...)"
else
	not_ok "$HELPER gets only { read write } on sockets of $SMTP (no getattr, setopt, shutdown, connectto, ...)" "granted: $perms
$(q "$POL" -A -s $HELPER -t $SMTP -c unix_stream_socket)"
fi
present "$SMTP may make and shut down its own unix stream sockets (the handoff socketpair)" "$POL" -A -s $SMTP -t $SMTP -c unix_stream_socket -p create,read,write,shutdown

# ---------------------------------------------------------------- postfix_smtp_t: absent
absent "$SMTP cannot write/append/create/unlink/rename/link/setattr/relabel token files" \
	"$POL" -A -s $SMTP -t $TOKEN -c file -p write,append,create,unlink,rename,link,setattr,relabelfrom,relabelto
absent "$SMTP cannot add/remove entries in, create, rename or setattr token directories" \
	"$POL" -A -s $SMTP -t $TOKEN -c dir -p write,add_name,remove_name,create,rmdir,rename,reparent,setattr,relabelfrom,relabelto
absent "$SMTP cannot write the configuration file" "$POL" -A -s $SMTP -t $CONF -c file -p write,append,create,unlink,rename,setattr
absent "$SMTP cannot run the helper without a transition (execute_no_trans)" "$POL" -A -s $SMTP -t $HELPER_EXEC -c file -p execute_no_trans
only "only $SMTP transitions into $HELPER" 1 "$SMTP" "$POL" -A -t $HELPER -c process -p transition
only "only $HELPER (and unconfined file access) may write token files" 1 "$HELPER files_unconfined_type" \
	"$POL" -A -t $TOKEN -c file -p write,append,create,unlink,rename
# The secrets of the split layout: no rule at all, in any class, from smtp
# or from any attribute it has (sesearch matches attributes too) to them.
no_secret_access "$SMTP has no allow rule on $SECRET, directly or through an attribute (any class but filesystem)" "$POL"
absent "$SMTP has no type_transition to $SECRET" "$POL" -T -s $SMTP -D $SECRET

# ---------------------------------------------------------------- helper: present
present "$HELPER manages token files (create/write/rename/unlink/setattr)" "$POL" -A -s $HELPER -t $TOKEN -c file -p create,write,rename,unlink,setattr,read,open
present "$HELPER adds/removes entries in token directories and locks them" "$POL" -A -s $HELPER -t $TOKEN -c dir -p add_name,remove_name,write,search,lock
present "type_transition $HELPER $TOKEN:file $TOKEN (temp and lock files)" "$POL" -T -s $HELPER -t $TOKEN -c file -D $TOKEN
present "$HELPER connects to http_port_t" "$POL" -A -s $HELPER -t http_port_t -c tcp_socket -p name_connect
present "$HELPER connects to http_cache_port_t (proxy)" "$POL" -A -s $HELPER -t http_cache_port_t -c tcp_socket -p name_connect
present "$HELPER resolves names (dns_port_t)" "$POL" -A -s $HELPER -t dns_port_t -c tcp_socket -p name_connect
present "$HELPER reads the resolver configuration (net_conf_t)" "$POL" -A -s $HELPER -t net_conf_t -c file -p read
present "$HELPER reads generic certificates (cert_t)" "$POL" -A -s $HELPER -t cert_t -c file -p read,open
present "$HELPER reads, writes, creates, renames and unlinks secrets files (split layout)" "$POL" -A -s $HELPER -t $SECRET -c file -p read,open,getattr,write,create,setattr,rename,unlink
present "$HELPER adds/removes entries in secrets directories and opens them (fsync)" "$POL" -A -s $HELPER -t $SECRET -c dir -p search,add_name,remove_name,write,open,read
absent "$HELPER cannot create, remove, move, relabel or lock secrets directories (the tool makes them)" "$POL" -A -s $HELPER -t $SECRET -c dir -p create,rmdir,rename,reparent,relabelfrom,relabelto,lock,setattr
absent "$HELPER cannot link, lock, execute or relabel secrets files" "$POL" -A -s $HELPER -t $SECRET -c file -p link,lock,execute,execute_no_trans,relabelfrom,relabelto
present "type_transition $HELPER $SECRET:file $SECRET (its temp files keep the secret type)" "$POL" -T -s $HELPER -t $SECRET -c file -D $SECRET
# Named transitions: a directory called "secrets" made in a token directory,
# and a file called sasl-xoauth2.secret made in etc_t, get the secret type
# (the helper stands for any domain: the rules are stated for all of them).
present "type_transition domain $TOKEN:dir $SECRET \"secrets\" (a new secrets directory is labelled)" "$POL" -T -s $HELPER -t $TOKEN -c dir -D $SECRET
if q "$POL" -T -s $HELPER -t $TOKEN -c dir -D $SECRET | grep -qE '[ "]secrets"?;$'; then
	ok "that type_transition is named (only an entry called secrets)"
else
	not_ok "that type_transition is named (only an entry called secrets)" "$(q "$POL" -T -s $HELPER -t $TOKEN -c dir -D $SECRET)"
fi
if q "$POL" -T -s $HELPER -t etc_t -c file -D $SECRET | grep -qE '[ "]sasl-xoauth2\.secret"?;$'; then
	ok "type_transition domain etc_t:file $SECRET \"sasl-xoauth2.secret\" (the client_secret_file is labelled)"
else
	not_ok "type_transition domain etc_t:file $SECRET \"sasl-xoauth2.secret\" (the client_secret_file is labelled)" "$(q "$POL" -T -s $HELPER -t etc_t -c file -D $SECRET)"
fi
absent "$HELPER cannot read the configuration file (it arrives on its stdin)" "$POL" -A -s $HELPER -t $CONF -c file -p read,open,getattr,map
present "$HELPER searches the Postfix chroot root (postfix_spool_t dir)" "$POL" -A -s $HELPER -t postfix_spool_t -c dir -p search

# ---------------------------------------------------------------- helper: absent / bounded
helper_bounds() { # POLICY LABEL
	local p=$1 l=$2
	absent "$HELPER has no capability rules$l" "$p" -A -s $HELPER -c capability,capability2,cap_userns,cap2_userns
	absent "$HELPER cannot bind, listen or accept$l" "$p" -A -s $HELPER -c tcp_socket,udp_socket -p name_bind,node_bind,listen,accept
	only "$HELPER connects only to http_port_t, http_cache_port_t, dns_port_t$l" 2 \
		"http_port_t http_cache_port_t dns_port_t" "$p" -A -s $HELPER -c tcp_socket -p name_connect
	absent "$HELPER executes nothing without a transition (execute_no_trans)$l" "$p" -A -s $HELPER -c file -p execute_no_trans
	only "$HELPER maps executable only its own binary and base shared-library types$l" 2 \
		"$HELPER_EXEC ld_so_t lib_t textrel_shlib_t" "$p" -A -s $HELPER -c file -p execute
	only "$HELPER is entered only through $HELPER_EXEC$l" 2 "$HELPER_EXEC" "$p" -A -s $HELPER -c file -p entrypoint
	absent "$HELPER transitions to no other domain$l" "$p" -A -s $HELPER -c process -p transition,dyntransition
	only "$HELPER writes files only of its token and secret types (and its own /proc)$l" 2 "$TOKEN $SECRET $HELPER" \
		"$p" -A -s $HELPER -c file -p write,append,create,unlink,rename,link,setattr
	only "$HELPER changes entries only in token and secrets directories$l" 2 "$TOKEN $SECRET" \
		"$p" -A -s $HELPER -c dir -p write,add_name,remove_name,create,rmdir,rename,reparent,setattr
	# Every rule from the helper to a postfix_* type: pipes/socket/fd/sigchld with
	# postfix_smtp_t, and search on the chroot root; nothing in the queue.
	local out bad
	out=$(q "$p" -A -s $HELPER | awk '$1 == "allow" { t = $3; sub(/:.*/, "", t); if (t ~ /^postfix_/) print }')
	bad=$(awk '{ t = $3; split(t, tc, ":"); ty = tc[1]; cl = tc[2]
		if (ty == "postfix_smtp_t" && (cl == "fd" || cl == "fifo_file" || cl == "process" || cl == "unix_stream_socket")) next
		if (ty == "postfix_spool_t" && cl == "dir") {
			line = $0; sub(/^[^{]*\{/, "", line); sub(/\}.*$/, "", line)
			if (line == "") { line = $4; sub(/;$/, "", line) }
			n = split(line, ps, " "); okp = 1
			for (i = 1; i <= n; i++) if (ps[i] !~ /^(getattr|open|search)$/) okp = 0
			if (okp) next
		}
		print }' <<<"$out")
	if [[ -z $bad ]]; then
		ok "$HELPER touches no Postfix queue/spool object (only search on the chroot root)$l"
	else
		not_ok "$HELPER touches no Postfix queue/spool object (only search on the chroot root)$l" "$bad"
	fi
}
helper_bounds "$POL" ""
if [[ -n $FULL ]]; then
	helper_bounds "$FULL" " [complete policy]"
	absent "$SMTP cannot modify token files [complete policy]" \
		"$FULL" -A -s $SMTP -t $TOKEN -c file -p write,append,create,unlink,rename,link,setattr,relabelfrom,relabelto
	absent "$SMTP cannot modify token directories [complete policy]" \
		"$FULL" -A -s $SMTP -t $TOKEN -c dir -p write,add_name,remove_name,create,rmdir,rename,reparent,setattr,relabelfrom,relabelto
	only "only $HELPER (and unconfined file access) may write token files [complete policy]" 1 \
		"$HELPER files_unconfined_type" "$FULL" -A -t $TOKEN -c file -p write,append,create,unlink,rename
	only "only $SMTP transitions into $HELPER [complete policy]" 1 "$SMTP" "$FULL" -A -t $HELPER -c process -p transition
	no_secret_access "$SMTP has no allow rule on $SECRET, directly or through an attribute (any class but filesystem) [complete policy]" "$FULL"
	only "only $HELPER (and unconfined file access) may write secrets files [complete policy]" 1 \
		"$HELPER files_unconfined_type" "$FULL" -A -t $SECRET -c file -p write,append,create,unlink,rename
fi

# ---------------------------------------------------------------- file contexts
# Combined file_contexts: the linked modules' .fc plus ours, sorted from least
# to most specific the way libsemanage sorts them (so the more specific entry
# wins, as on an installed system).  Home directory templates are left out.
mkdir -p "$work/fc"
for m in "${modules_min[@]}"; do
	semodule_unpackage "$work/distro/$m.pp" "$work/fc/$m.mod" "$work/fc/$m.fc" >/dev/null 2>&1 ||
		die "semodule_unpackage $m.pp failed"
done
semodule_unpackage "$PP" "$work/fc/$MOD.mod" "$work/fc/$MOD.fc" >/dev/null 2>&1 || die "semodule_unpackage $MOD.pp failed"
for m in "${modules_min[@]}" "$MOD"; do cat "$work/fc/$m.fc"; done |
	grep -Ev '^[[:space:]]*(#|$)' | grep -Ev 'HOME_DIR|HOME_ROOT|%\{USER|ROLE' |
	awk '{
		p = $1; meta = -1; esc = 0
		for (i = 1; i <= length(p); i++) {
			c = substr(p, i, 1)
			if (c == "\\") { i++; esc++; continue }
			if (index(".^$?*+|[({", c)) { meta = i - 1 - esc; break }
		}
		tesc = gsub(/\\/, "\\", p)
		printf "%d %05d %05d %d\t%s\n", (meta >= 0 ? 0 : 1), (meta >= 0 ? meta : 0),
			length($1) - tesc, (NF > 2 ? 1 : 0), $0
	}' | sort -s -k1,1n -k2,2n -k3,3n -k4,4n | cut -f2- >"$work/fc/file_contexts"

if out=$(sefcontext_compile -p "$POL" -o "$work/fc/file_contexts.bin" "$work/fc/file_contexts" 2>&1); then
	ok "combined file_contexts compile and every context is valid in the expanded policy"
else
	not_ok "combined file_contexts compile and every context is valid in the expanded policy" "$out"
fi

S_IFREG=32768
S_IFDIR=16384
label() { # PATH MODE EXPECTED_TYPE
	local path=$1 mode=$2 want=$3 out got
	out=$(selabel_lookup -b file -f "$work/fc/file_contexts" -k "$path" -t "$mode" 2>&1) || true
	got=$(sed -n 's/^Default context: //p' <<<"$out" | cut -d: -f3)
	if [[ $got == "$want" ]]; then
		ok "label $path -> $want"
	else
		not_ok "label $path -> $want" "got: ${got:-?} ($out)"
	fi
}
label /etc/tokens $S_IFDIR $TOKEN
label /etc/tokens/gmail.json $S_IFREG $TOKEN
label /etc/tokens/.gmail.json.tmp $S_IFREG $TOKEN
label /var/spool/postfix/etc/tokens $S_IFDIR $TOKEN
label /var/spool/postfix/etc/tokens/gmail.json $S_IFREG $TOKEN
label /var/spool/postfix/etc/resolv.conf $S_IFREG etc_t
label /var/spool/postfix/deferred $S_IFDIR postfix_spool_maildrop_t
label /etc/tokens-old $S_IFDIR etc_t
label /etc/tokens/secrets $S_IFDIR $SECRET
label /etc/tokens/secrets/gmail.json $S_IFREG $SECRET
label /etc/tokens/secrets/.gmail.json.tmp $S_IFREG $SECRET
label /var/spool/postfix/etc/tokens/secrets $S_IFDIR $SECRET
label /var/spool/postfix/etc/tokens/secrets/gmail.json $S_IFREG $SECRET
label /etc/tokens/secrets-old $S_IFDIR $TOKEN
label /etc/tokens/secrets.json $S_IFREG $TOKEN
label /etc/sasl-xoauth2.secret $S_IFREG $SECRET
label /var/spool/postfix/etc/sasl-xoauth2.secret $S_IFREG $SECRET
label /etc/sasl-xoauth2.conf $S_IFREG $CONF
label /usr/libexec/sasl-xoauth2 $S_IFDIR bin_t
label /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh $S_IFREG $HELPER_EXEC
label /usr/lib/sasl-xoauth2/sasl-xoauth2-refresh $S_IFREG $HELPER_EXEC
label /usr/lib/x86_64-linux-gnu/sasl2/libsasl-xoauth2.so $S_IFREG lib_t

# ---------------------------------------------------------------- negative tests
# A copy of the module with one violating rule must be rejected at
# link/expand time by the matching neverallow.
neg=0
# NEG_DISTRO / NEG_MODS select the branch and what it is linked with.
NEG_DISTRO=
NEG_MODS=("${modules_min[@]}")
negative() { # DESC RULES
	local d=$1 rules=$2 dir
	neg=$((neg + 1))
	dir="$work/neg$neg"
	mkdir -p "$dir"
	cp "$src/$MOD.te" "$src/$MOD.fc" "$src/$MOD.if" "$dir/"
	printf '\n# deliberately violating rule (negative test)\n%s\n' "$rules" >>"$dir/$MOD.te"
	if ! build_module "$dir" "$NEG_DISTRO"; then
		not_ok "neverallow rejects: $d (the violating copy did not even compile)" "$(cat "$dir/build.log")"
		return
	fi
	if link_expand "$dir/pol.bin" "$dir/$MOD.pp" "${NEG_MODS[@]}"; then
		not_ok "neverallow rejects: $d (link/expand succeeded)"
	elif grep -q 'neverallow violated by' "$dir/pol.bin.log"; then
		ok "neverallow rejects: $d (libsepol: $(grep -m1 -o 'neverallow violated by .*' "$dir/pol.bin.log"))"
	else
		not_ok "neverallow rejects: $d (failed, but not because of a neverallow)" "$(cat "$dir/pol.bin.log")"
	fi
}
# Control: the same procedure with a harmless addition succeeds, so the
# failures below come from the added rules, not from the harness.
control_dir="$work/control"
mkdir -p "$control_dir"
cp "$src/$MOD.te" "$src/$MOD.fc" "$src/$MOD.if" "$control_dir/"
printf '\n# harmless addition (control)\nallow %s %s:file getattr;\n' "$SMTP" "$TOKEN" >>"$control_dir/$MOD.te"
if build_module "$control_dir" && link_expand "$control_dir/pol.bin" "$control_dir/$MOD.pp" "${modules_min[@]}"; then
	ok "control: a copy with a harmless extra rule builds, links and expands"
else
	not_ok "control: a copy with a harmless extra rule builds, links and expands" \
		"$(cat "$control_dir/build.log" "$control_dir/pol.bin.log" 2>/dev/null)"
fi
negative "allow $SMTP $TOKEN:file write" \
	"allow $SMTP $TOKEN:file write;"
negative "allow $SMTP $TOKEN:dir { add_name remove_name }" \
	"allow $SMTP $TOKEN:dir { add_name remove_name };"
negative "allow $SMTP $HELPER_EXEC:file execute_no_trans" \
	"allow $SMTP $HELPER_EXEC:file execute_no_trans;"
negative "allow $SMTP $SECRET:file read" \
	"allow $SMTP $SECRET:file read;"
negative "allow $SMTP $SECRET:file getattr" \
	"allow $SMTP $SECRET:file getattr;"
negative "allow $SMTP $SECRET:dir search" \
	"allow $SMTP $SECRET:dir search;"
negative "allow $SMTP $SECRET:lnk_file read" \
	"allow $SMTP $SECRET:lnk_file read;"
negative "allow $SMTP $SECRET:file map (the Debian branch states *)" \
	"allow $SMTP $SECRET:file map;"
negative "allow $HELPER self:capability dac_override" \
	"allow $HELPER self:capability dac_override;"
negative "allow $HELPER bin_t:file execute_no_trans" \
	"gen_require(\`type bin_t;')
allow $HELPER bin_t:file execute_no_trans;"
negative "allow $HELPER shell_exec_t:file execute" \
	"gen_require(\`type shell_exec_t;')
allow $HELPER shell_exec_t:file execute;"
negative "allow $HELPER http_port_t:tcp_socket name_bind" \
	"allow $HELPER http_port_t:tcp_socket name_bind;"
negative "allow $HELPER postfix_spool_t:dir add_name" \
	"allow $HELPER postfix_spool_t:dir add_name;"
negative "allow $HELPER postfix_spool_t:file read (the neverallow is ~map, not only write)" \
	"allow $HELPER postfix_spool_t:file read;"
negative "allow $HELPER postfix_spool_maildrop_t:dir add_name (queue type, separate on Debian)" \
	"gen_require(\`type postfix_spool_maildrop_t;')
allow $HELPER postfix_spool_maildrop_t:dir add_name;"
negative "allow $HELPER $SMTP:process dyntransition" \
	"allow $HELPER $SMTP:process dyntransition;"

# The redhat branch, next to the Fedora stand-in: the exceptions are named,
# everything else is still rejected (so optional_policy took effect).
NEG_DISTRO=redhat
NEG_MODS=("${sim_mods[@]}" "$SIM_PP")
negative "[redhat branch + Fedora stand-in] allow $HELPER bin_t:file execute_no_trans" \
	"gen_require(\`type bin_t;')
allow $HELPER bin_t:file execute_no_trans;"
negative "[redhat branch + Fedora stand-in] allow $HELPER shell_exec_t:file execute" \
	"gen_require(\`type shell_exec_t;')
allow $HELPER shell_exec_t:file execute;"
negative "[redhat branch + Fedora stand-in] allow $HELPER $SMTP:process transition" \
	"allow $HELPER $SMTP:process transition;"
negative "[redhat branch + Fedora stand-in] allow $HELPER $SMTP:process dyntransition" \
	"allow $HELPER $SMTP:process dyntransition;"
negative "[redhat branch + Fedora stand-in] allow $SMTP $HELPER_EXEC:file execute_no_trans (RHEL 9 domtrans_pattern)" \
	"allow $SMTP $HELPER_EXEC:file execute_no_trans;"
negative "[redhat branch + Fedora stand-in] allow $SMTP $SECRET:file { open read }" \
	"allow $SMTP $SECRET:file { open read };"
negative "[redhat branch + Fedora stand-in] allow $SMTP $SECRET:dir search" \
	"allow $SMTP $SECRET:dir search;"
negative "[redhat branch + Fedora stand-in] allow $HELPER postfix_spool_t:file { read write }" \
	"allow $HELPER postfix_spool_t:file { read write };"

summary_and_exit
