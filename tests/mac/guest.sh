#!/bin/bash
# Runs inside the test VM (started by tests/mac/init): installs
# sasl-xoauth2 and its policy the way README.md and docs/policies.md say,
# enforces the LSM, relays mail through Postfix and the plugin to the fake
# Gmail with an expired token (smtp chrooted, then not), and checks the
# kernel's log: no denial on that path, then each denial the policy
# promises. TAP lines go to the console prefixed "MAC-TAP"; logs to /mac/out.
#
#   guest.sh selinux | apparmor
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
MODE=$1
# Descriptors of our own (not inherited from init's kernel_t), as a login
# shell would have.
exec </dev/null >/dev/console 2>&1
P=/mac/payload
OUT=/mac/out
mkdir -p "$OUT"
LOG=$OUT/$MODE.log
exec 9>>"$LOG"

info() { echo "MAC-INFO [$(cut -d' ' -f1 /proc/uptime) s] $MODE: $*"; }
tap() { # 0|1 description [details...]
  local ok=$1 desc=$2
  shift 2
  if [ "$ok" = 0 ]; then
    echo "MAC-TAP ok - $MODE: $desc"
  else
    echo "MAC-TAP not ok - $MODE: $desc"
    for d in "$@"; do [ -z "$d" ] || printf '%s\n' "$d" | head -n "${DIAG_LINES:-15}" | cut -c1-400 | sed 's/^/MAC-DIAG   /'; done
  fi
  printf '%s %s\n' "$([ "$ok" = 0 ] && echo ok || echo FAIL)" "$desc" >&9
}
# check DESCRIPTION COMMAND...: the command's output goes to the log.
check() {
  local desc=$1 out
  shift
  out=$("$@" 2>&1)
  local rc=$?
  printf '$ %s\n%s\n' "$*" "$out" >&9
  if [ $rc -eq 0 ]; then tap 0 "$desc"; else tap 1 "$desc" "exit $rc: $out"; fi
}
wait_for() { # file pattern seconds
  local i
  for i in $(seq $(( $3 * 10 ))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
field() { grep -o "\"$2\": *\"[^\"]*\"" "$1" | head -n1 | sed 's/.*: *"\(.*\)"/\1/'; }

# Kernel log lines since the last mark (no auditd: the kernel logs AVCs and
# AppArmor records itself; init lifted the printk rate limit).
KMSG_MARK=0
mark() { KMSG_MARK=$(dmesg | wc -l); }
since_mark() { dmesg | tail -n +$(( KMSG_MARK + 1 )); }
denials() {
  case $MODE in
    selinux) since_mark | grep 'avc: *denied' ;;
    apparmor) since_mark | grep 'apparmor="DENIED"' ;;
  esac
}

USER_ADDR=alice@gmail.test
TOKDIR_CHROOT=/var/spool/postfix/etc/tokens
TOKDIR=/etc/tokens
HELPER=/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh
PLUGIN_DIR=/usr/lib/x86_64-linux-gnu/sasl2
MAILLOG=/var/log/postfix.log
G=/run/gmail

echo "MAC-INFO $MODE: kernel $(uname -r), LSMs: $(cat /sys/kernel/security/lsm)"
case $MODE in
  selinux) grep -q selinux /sys/kernel/security/lsm && [ -e /sys/fs/selinux/enforce ] ;;
  apparmor) grep -q apparmor /sys/kernel/security/lsm && [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] ;;
esac
tap $? "the kernel runs $MODE (/sys/kernel/security/lsm)"

# ---- install as `make install` would ---------------------------------------
info "installing"
install -D -m 0755 "$P/libsasl-xoauth2.so" "$PLUGIN_DIR/libsasl-xoauth2.so"
install -D -m 0755 "$P/sasl-xoauth2-refresh" "$HELPER"
install -D -m 0755 "$P/sasl-xoauth2-tool" /usr/bin/sasl-xoauth2-tool
install -D -m 0755 "$P/fake-gmail" /usr/local/bin/fake-gmail
install -d -m 0755 /usr/local/libexec/mac-test
install -d -o postfix -g postfix -m 0700 "$TOKDIR" "$TOKDIR_CHROOT"

# ---- the fake Gmail: token endpoint on 443 (http_port_t), relay on 587 -----
info "starting the fake Gmail"
mkdir -p "$G"
mkfifo "$G/ctl"
SECRET=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
fake-gmail --dir "$G" --client-id mac-client.apps.example --client-secret "$SECRET" \
  --token-file "$TOKDIR_CHROOT/$USER_ADDR" --user "$USER_ADDR" --access-valid-for -300 \
  --token-port 443 --relay-port 587 <"$G/ctl" >"$G/out" 2>"$G/err" &
exec 3>"$G/ctl"
wait_for "$G/out" '^ready' 60
tap $? "fake Gmail listens (token endpoint 127.0.0.1:443, relay 127.0.0.1:587)" "$(cat "$G/err" 2>/dev/null)"
ENDPOINT=$(sed -n 's/^token_endpoint //p' "$G/out")
chown postfix:postfix "$TOKDIR_CHROOT/$USER_ADDR"
# The same expired token outside the chroot, for the unchrooted smtp.
cp -p "$TOKDIR_CHROOT/$USER_ADDR" "$TOKDIR/$USER_ADDR"
install -m 0644 "$G/provider-ca.pem" /etc/ssl/certs/mac-test-provider-ca.pem
install -m 0644 "$G/relay-ca.pem" /etc/postfix/mac-test-relay-ca.pem

cat >/etc/sasl-xoauth2.conf <<EOF
{
  "client_id": "mac-client.apps.example",
  "client_secret": "$SECRET",
  "token_endpoint": "$ENDPOINT",
  "ca_bundle_file": "/etc/ssl/certs/mac-test-provider-ca.pem",
  "refresh_timeout": 60,
  "always_log_to_syslog": "yes"
}
EOF
chmod 0600 /etc/sasl-xoauth2.conf

# ---- Postfix: relay everything to the fake Gmail with XOAUTH2 --------------
postconf -e "myhostname = mac-test.example.test" "mydestination =" "alias_maps =" \
  "inet_interfaces = loopback-only" "inet_protocols = ipv4" \
  "relayhost = [127.0.0.1]:587" "smtp_tls_security_level = encrypt" \
  "smtp_tls_CAfile = /etc/postfix/mac-test-relay-ca.pem" "smtp_tls_loglevel = 1" \
  "smtp_sasl_auth_enable = yes" "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd" \
  "smtp_sasl_security_options = noanonymous" "smtp_sasl_mechanism_filter = xoauth2" \
  "maillog_file = $MAILLOG"
printf '[127.0.0.1]:587 %s:/etc/tokens/%s\n' "$USER_ADDR" "$USER_ADDR" >/etc/postfix/sasl_passwd
chmod 0600 /etc/postfix/sasl_passwd
postmap /etc/postfix/sasl_passwd
install -m 0640 -o postfix -g adm /dev/null "$MAILLOG"
smtp_chroot() { postconf -F "smtp/unix/chroot = $1" "relay/unix/chroot = $1"; }
smtp_chroot y

# ---- the policy, as docs/policies.md says ----------------------------------
postfix_start() {
  case $MODE in
    # As init would: a service script runs in initrc_t, and master moves
    # to its own domain when it is executed.
    selinux) runcon system_u:system_r:initrc_t:s0 /etc/init.d/postfix start ;;
    apparmor) /etc/init.d/postfix start ;;
  esac </dev/null >/dev/null 2>&1 3>&- 9>&-
}
postfix_stop() {
  case $MODE in
    selinux) runcon system_u:system_r:initrc_t:s0 /etc/init.d/postfix stop ;;
    apparmor) /etc/init.d/postfix stop ;;
  esac </dev/null >/dev/null 2>&1 3>&- 9>&-
  for _ in $(seq 100); do pgrep -x master >/dev/null || break; sleep 0.1; done
}

info "loading the policy"
case $MODE in
  selinux)
    # The README's command; the test-only module (probes in smtp's and the
    # helper's domains) goes in the same transaction: one policy rebuild.
    check "semodule -i sasl_xoauth2.pp (README), plus the test-only mac_test.pp" \
      semodule -i "$P/sasl_xoauth2.pp" -i "$P/mac_test.pp"
    check "restorecon as README says" \
      restorecon -Rv /etc/tokens /var/spool/postfix/etc/tokens /etc/sasl-xoauth2.conf /usr/libexec/sasl-xoauth2
    # What the rest of the install needs labelled (the plugin, the test's
    # own files), as any package's postinst would.
    restorecon -R "$PLUGIN_DIR" /usr/bin/sasl-xoauth2-tool /etc/postfix /etc/ssl/certs /usr/local /var/log
    label() { stat -c %C "$1" | cut -d: -f3; }
    bad=""
    for f in "$TOKDIR" "$TOKDIR/$USER_ADDR" "$TOKDIR_CHROOT" "$TOKDIR_CHROOT/$USER_ADDR"; do
      [ "$(label "$f")" = sasl_xoauth2_token_t ] || bad="$bad $f:$(label "$f")"
    done
    [ "$(label /etc/sasl-xoauth2.conf)" = sasl_xoauth2_conf_t ] || bad="$bad conf:$(label /etc/sasl-xoauth2.conf)"
    [ "$(label "$HELPER")" = sasl_xoauth2_refresh_exec_t ] || bad="$bad helper:$(label "$HELPER")"
    tap "$([ -z "$bad" ] && echo 0 || echo 1)" "token files, config and helper carry the module's types" "$bad"
    # Probes: the same static binary labelled as smtp's and as the
    # helper's entry point.
    install -m 0755 "$P/probe" /usr/local/libexec/mac-test/smtp-probe
    install -m 0755 "$P/probe" /usr/local/libexec/mac-test/helper-probe
    chcon -t postfix_smtp_exec_t /usr/local/libexec/mac-test/smtp-probe
    chcon -t sasl_xoauth2_refresh_exec_t /usr/local/libexec/mac-test/helper-probe
    if grep -q 'macpermissive=1' /proc/cmdline; then
      tap 1 "SELinux left permissive (macpermissive=1: exploring)"
    else
      check "setenforce 1" setenforce 1
      [ "$(getenforce)" = Enforcing ]
      tap $? "SELinux is enforcing ($(getenforce))"
    fi
    ;;
  apparmor)
    # docs/policies.md: the helper's profile, and the snippet in the
    # postfix-smtp profile from apparmor-profiles.
    check "apparmor_parser -r the helper profile (docs/policies.md)" sh -c "
      install -m 0644 $P/apparmor/usr.libexec.sasl-xoauth2.sasl-xoauth2-refresh /etc/apparmor.d/ &&
      apparmor_parser -r /etc/apparmor.d/usr.libexec.sasl-xoauth2.sasl-xoauth2-refresh"
    check "postfix-smtp profile with the sasl-xoauth2 snippet, enforced (docs/policies.md)" sh -c "
      install -m 0644 $P/apparmor/local/postfix-smtp-sasl-xoauth2 /etc/apparmor.d/local/ &&
      cp /usr/share/apparmor/extra-profiles/postfix-smtp /etc/apparmor.d/postfix-smtp &&
      sed -i 's|^}|  include <local/postfix-smtp-sasl-xoauth2>\n}|' /etc/apparmor.d/postfix-smtp &&
      apparmor_parser -r /etc/apparmor.d/postfix-smtp"
    install -m 0755 "$P/probe" /usr/local/libexec/mac-test/probe
    st=$(aa-status 2>&1)
    printf '%s\n' "$st" >&9
    echo "$st" | sed -n '/profiles are in enforce mode/,/profiles are in complain mode/p' | grep -q 'sasl-xoauth2-refresh' &&
      echo "$st" | sed -n '/profiles are in enforce mode/,/profiles are in complain mode/p' | grep -q 'postfix-smtp'
    tap $? "aa-status: sasl-xoauth2-refresh and postfix-smtp in enforce mode"
    ;;
esac

# ---- delivery: the token expired, the plugin runs the helper ---------------
deliveries=0
deliver() { # label token-dir
  local label=$1 tokfile=$2/$USER_ADDR at_old at_new n
  at_old=$(field "$tokfile" access_token)
  info "sending a message ($label)"
  deliveries=$(( deliveries + 1 ))
  printf 'From: <alice@example.test>\nTo: <friend@example.com>\nSubject: mac %s\n\nHello.\n' "$label" |
    timeout 60 sendmail -f alice@example.test friend@example.com >/dev/null 2>&1 3>&- 9>&-
  wait_for "$G/messages.jsonl" "mac $label" 120
  tap $? "$label: the message reached the fake relay" "$(tail -n 20 "$MAILLOG" 2>/dev/null)"
  n=$(grep -c 'status=sent' "$MAILLOG" 2>/dev/null)
  [ "$n" -ge "$deliveries" ]
  tap $? "$label: Postfix logged status=sent"
  at_new=$(field "$tokfile" access_token)
  [ -n "$at_new" ] && [ "$at_new" != "$at_old" ]
  tap $? "$label: the helper refreshed the expired token in $tokfile"
  [ "$(stat -c %U:%a "$tokfile")" = postfix:600 ]
  tap $? "$label: the refreshed token file is still postfix, mode 0600 ($(stat -c %U:%a "$tokfile"))"
}

mark
check "Postfix starts (init script)" postfix_start
wait_for "$MAILLOG" 'daemon started' 30
ps -eo label,user,comm >&9 2>&1
if [ "$MODE" = selinux ]; then
  ps -eo label,comm | grep -w master | grep -q postfix_master_t
  tap $? "ps -Z: master runs in postfix_master_t" "$(ps -eo label,comm | grep -E 'master|pickup|qmgr')" "$(denials)" "$(tail -n 20 "$MAILLOG")"
fi

deliver "chrooted smtp" "$TOKDIR_CHROOT"
ps -eo label,user,comm | grep -E 'master|smtp|qmgr' | sed 's/^/MAC-INFO   ps -Z: /'
case $MODE in
  selinux)
    ps -eo label,comm | grep -w smtp | grep -q postfix_smtp_t
    tap $? "ps -Z: smtp runs in postfix_smtp_t"
    since_mark | grep -q 'avc: *granted *{ transition } .*scontext=[^ ]*:postfix_smtp_t:.* tcontext=[^ ]*:sasl_xoauth2_refresh_t'
    tap $? "chrooted smtp ran the helper with a transition into sasl_xoauth2_refresh_t (auditallow)"
    since_mark | grep -q 'avc: *granted *{ rename } .*scontext=[^ ]*:sasl_xoauth2_refresh_t:.*tcontext=[^ ]*:sasl_xoauth2_token_t'
    tap $? "the token file was renamed by sasl_xoauth2_refresh_t (auditallow)"
    ;;
  apparmor)
    cat /proc/$(pgrep -x smtp | head -n1)/attr/current 2>/dev/null | grep -q '^postfix-smtp (enforce)'
    tap $? "smtp runs under postfix-smtp (enforce)"
    ;;
esac
grep -q 'running as' "$MAILLOG"
[ $? -ne 0 ]
tap $? "chrooted helper: no /proc, so no label in its status line" "$(grep 'helper:' "$MAILLOG")"

postfix_stop
smtp_chroot n
check "Postfix restarts with smtp not chrooted" postfix_start
deliver "smtp not chrooted" "$TOKDIR"
case $MODE in
  selinux) want='running as system_u:system_r:sasl_xoauth2_refresh_t' ;;
  apparmor) want='running as sasl-xoauth2-refresh (enforce)' ;;
esac
grep -q "helper: ok: refreshed .*$want" "$MAILLOG"
tap $? "the helper's status line says: $want" "$(grep 'helper:' "$MAILLOG" | tail -n 2)"

# AppArmor attaches the helper's profile by path, to root's --check too,
# which then may not run postconf or read what it inspects: docs/policies.md
# says to run it unconfined.
CHECK=("$HELPER" --check "$TOKDIR_CHROOT/$USER_ADDR")
[ "$MODE" = apparmor ] && CHECK=(aa-exec -p unconfined -- "${CHECK[@]}")
out=$("${CHECK[@]}" 2>&1)
rc=$?
printf '$ %s\n%s\n' "${CHECK[*]}" "$out" >&9
[ $rc -eq 0 ] || [ $rc -eq 1 ]
tap $? "${CHECK[*]} as root runs (exit $rc)" "$out"
echo "$out" | grep -iE "^ *(ok|warn|fail).*$MODE" | sed 's/^/MAC-INFO   --check: /'
! echo "$out" | grep -iE "^ *fail.*$MODE" >/dev/null
tap $? "--check finds nothing wrong with the $MODE setup" "$(echo "$out" | grep -i "$MODE")"
check "sasl-xoauth2-tool test-config as root" sasl-xoauth2-tool test-config

d=$(denials)
printf '%s\n' "$d" >"$OUT/$MODE-denials-delivery.txt"
# Ours: smtp (which loads the plugin), the helper, the tool, our types and
# profiles. Denials of other programs (Postfix's own, sendmail, the test's
# shell) are listed, not counted: they are the base policy's business.
OURS='postfix_smtp_t|sasl_xoauth2|sasl-xoauth2|comm="smtp"|postfix-smtp'
ours=$(printf '%s\n' "$d" | grep -E "$OURS")
[ -z "$ours" ]
DIAG_LINES=80 tap $? "no $MODE denial for smtp, the helper or the tool on the whole path (delivery x2, refresh, rename, lock, --check)" "$ours"
others=$(printf '%s\n' "$d" | grep -vE "$OURS" | grep .)
info "other denials on that path (not ours): $(printf '%s\n' "$others" | grep -c .)"
printf '%s\n' "$others" | grep . | sed -E 's/.*(avc: +denied|apparmor="DENIED")/\1/' | cut -c1-220 | sort | uniq -c | sort -rn | head -n 12 | sed 's/^/MAC-INFO     /'
since_mark >"$OUT/$MODE-kmsg-delivery.txt"
# ("kauditd hold queue overflow" is not a loss: with no auditd the kernel
# prints each record before it tries to hold it.)
grep -E 'callbacks suppressed|audit: (backlog limit|rate limit)|audit_lost' "$OUT/$MODE-kmsg-delivery.txt" >/dev/null
[ $? -ne 0 ]
tap $? "the kernel log lost no records"

# ---- the denials the policy promises ----------------------------------------
# probe AS-DOMAIN OP ARGS...: run the probe as user postfix (as smtp and the
# helper run) in smtp's or the helper's domain/profile; echo its output.
probe() {
  local who=$1
  shift
  case $MODE in
    selinux)
      local dom=postfix_smtp_t exe=/usr/local/libexec/mac-test/smtp-probe
      [ "$who" = helper ] && { dom=sasl_xoauth2_refresh_t; exe=/usr/local/libexec/mac-test/helper-probe; }
      setpriv --reuid=postfix --regid=postfix --clear-groups runcon -t "$dom" "$exe" "$@" 2>&1 3>&- 9>&- ;;
    apparmor)
      local prof=postfix-smtp
      [ "$who" = helper ] && prof=sasl-xoauth2-refresh
      setpriv --reuid=postfix --regid=postfix --clear-groups aa-exec -p "$prof" -- /usr/local/libexec/mac-test/probe "$@" 2>&1 3>&- 9>&- ;;
  esac
}
# expect_denied DESC WHO PATTERN OP ARGS...: the probe is refused (EACCES/
# EPERM) and the kernel logs a denial matching PATTERN.
expect_denied() {
  local desc=$1 who=$2 pat=$3 out rc d
  shift 3
  mark
  out=$(probe "$who" "$@")
  rc=$?
  sleep 0.2
  d=$(denials)
  printf '$ probe %s %s -> %s (exit %s)\n%s\n' "$who" "$*" "$out" "$rc" "$d" >&9
  if [ $rc -eq 13 ] && echo "$d" | grep -qE -- "$pat"; then
    tap 0 "$desc"
    echo "$d" | grep -E -- "$pat" | head -n1 | sed 's/^.*\(avc:\|apparmor=\)/MAC-INFO   \1/' | cut -c1-230
  else
    tap 1 "$desc" "probe: $out (exit $rc)" "kernel: ${d:-no denial logged}"
  fi
}
T=$TOKDIR_CHROOT/$USER_ADDR
info "probing the promised denials"
case $MODE in
  selinux)
    sm='scontext=[^ ]*:postfix_smtp_t:[^ ]* tcontext=[^ ]*:sasl_xoauth2_token_t:[^ ]* tclass=(file|dir) permissive=0'
    he='scontext=[^ ]*:sasl_xoauth2_refresh_t:[^ ]*'
    expect_denied "smtp's domain cannot write a token file" smtp "denied  *\{ (write|append) \}.*$sm" write "$T"
    expect_denied "smtp's domain cannot rename a token file" smtp "denied .*$sm" rename "$T" "$T.moved"
    expect_denied "smtp's domain cannot unlink a token file" smtp "denied .*$sm" unlink "$T"
    expect_denied "the helper's domain cannot read a file outside its types (/etc/postfix/main.cf)" helper \
      "denied  *\{ (read|open|search|getattr) \}.*$he tcontext=[^ ]*:postfix_etc_t:.* permissive=0" read /etc/postfix/main.cf
    expect_denied "the helper's domain cannot connect to a non-HTTP port (25)" helper \
      "denied  *\{ name_connect \}.*$he tcontext=[^ ]*:smtp_port_t:.* permissive=0" connect 25
    # It cannot even search /usr/bin (bin_t); what it could reach is a
    # program dropped into a token directory, which it may write.
    install -m 0755 /usr/bin/true "$TOKDIR_CHROOT/true"
    expect_denied "the helper's domain cannot execute a program (one placed in its token directory)" helper \
      "denied  *\{ (execute|execute_no_trans) \}.*$he tcontext=[^ ]*:sasl_xoauth2_token_t:.* permissive=0" exec "$TOKDIR_CHROOT/true"
    rm -f "$TOKDIR_CHROOT/true"
    ;;
  apparmor)
    sm='apparmor="DENIED" .*profile="postfix-smtp" name="/var/spool/postfix/etc/tokens/'
    he='apparmor="DENIED" .*profile="sasl-xoauth2-refresh"'
    expect_denied "smtp's profile cannot write a token file" smtp "$sm" write "$T"
    expect_denied "smtp's profile cannot rename a token file" smtp "$sm" rename "$T" "$T.moved"
    expect_denied "smtp's profile cannot unlink a token file" smtp "$sm" unlink "$T"
    expect_denied "the helper's profile cannot read a file outside its rules (/etc/postfix/main.cf)" helper \
      "$he .*name=\"/etc/postfix/main.cf\"" read /etc/postfix/main.cf
    expect_denied "the helper's profile cannot execute a program (/usr/bin/true)" helper \
      'apparmor="DENIED" operation="exec" profile="sasl-xoauth2-refresh" name="/usr/bin/true"' exec /usr/bin/true
    ;;
esac
[ -f "$T" ] && [ ! -e "$T.moved" ] && [ "$(field "$T" access_token)" != "" ]
tap $? "the token file is intact after the probes"

# Control: the probes can do what the policy allows, so the refusals above
# come from the policy, not from the probe.
mark
out=$(probe smtp read "$T")
[ $? -eq 0 ]
tap $? "control: smtp's domain can read the token file" "$out" "$(denials)"
out=$(probe helper connect 443)
[ $? -eq 0 ]
tap $? "control: the helper's domain can connect to the HTTPS port" "$out" "$(denials)"

# ---- the split layout: secrets smtp must not reach ---------------------------
# Secrets files where the split layout keeps them (issue 16): D/secrets/NAME
# beside the token files, inside and outside the chroot, and the
# client_secret_file.  A separate account name, so that the deliveries (this
# one's single-file account) never see them.  The secrets hold throwaway
# values: delivery in the split layout is a step of its own.
# mkdir and a shell redirection, not install(1), which may set the label
# from the file contexts itself: this shows what the kernel gives new files.
# write_secret FILE CONTENT: a new file, mode 0600, owned by postfix.
write_secret() {
  (umask 077 && printf '%s\n' "$2" >"$1") && chown postfix:postfix "$1"
}
# make_secrets TOKEN-DIR NAME: D/secrets (0700) and D/secrets/NAME (0600),
# owned by postfix, made by root as sasl-xoauth2-tool split-secrets would.
make_secrets() {
  mkdir -m 0700 "$1/secrets" && chown postfix:postfix "$1/secrets" &&
    write_secret "$1/secrets/$2" "{\"refresh_token\": \"mac-probe-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')\"}"
}
SPLIT_PROBE=probe@gmail.test
SD=$TOKDIR_CHROOT/secrets
S=$SD/$SPLIT_PROBE
CS=/etc/sasl-xoauth2.secret
info "making secrets files (split layout)"
make_secrets "$TOKDIR_CHROOT" "$SPLIT_PROBE" && make_secrets "$TOKDIR" "$SPLIT_PROBE" &&
  write_secret "$CS" "$SECRET"
tap $? "secrets directories, secrets files and $CS made (postfix, 0700/0600)"
if [ "$MODE" = selinux ]; then
  secret_labels() {
    local f bad=""
    for f in "$SD" "$S" "$TOKDIR/secrets" "$TOKDIR/secrets/$SPLIT_PROBE" "$CS"; do
      [ "$(label "$f")" = sasl_xoauth2_secret_t ] || bad="$bad $f:$(label "$f")"
    done
    echo "$bad"
  }
  # Made by root (unconfined_t) in a token directory / in /etc: the named
  # type_transitions label the directory and the file, the files inside
  # inherit the directory's type, before any restorecon.
  bad=$(secret_labels)
  tap "$([ -z "$bad" ] && echo 0 || echo 1)" "new secrets directories and files are sasl_xoauth2_secret_t at creation (named type_transition, inheritance)" "$bad"
  check "restorecon as docs/policies.md says for secrets" \
    restorecon -Rv "$TOKDIR/secrets" "$SD" "$CS"
  bad=$(secret_labels)
  tap "$([ -z "$bad" ] && echo 0 || echo 1)" "after restorecon the secrets carry sasl_xoauth2_secret_t (file contexts win over the token directory's)" "$bad"
  [ "$(label "$TOKDIR_CHROOT/$USER_ADDR")" = sasl_xoauth2_token_t ]
  tap $? "the token file beside them is still sasl_xoauth2_token_t"
fi
info "probing the secrets"
case $MODE in
  selinux)
    ss='scontext=[^ ]*:postfix_smtp_t:[^ ]* tcontext=[^ ]*:sasl_xoauth2_secret_t:[^ ]* tclass=(file|dir) permissive=0'
    expect_denied "smtp's domain cannot read a secrets file (chroot)" smtp "denied .*$ss" read "$S"
    expect_denied "smtp's domain cannot list a secrets directory (chroot)" smtp "denied .*$ss" list "$SD"
    expect_denied "smtp's domain cannot read a secrets file (/etc/tokens)" smtp "denied .*$ss" read "$TOKDIR/secrets/$SPLIT_PROBE"
    expect_denied "smtp's domain cannot read the client_secret_file" smtp "denied .*$ss" read "$CS"
    ;;
  apparmor)
    ss='apparmor="DENIED" .*profile="postfix-smtp" name="'
    expect_denied "smtp's profile cannot read a secrets file (chroot)" smtp "$ss$S\"" read "$S"
    expect_denied "smtp's profile cannot list a secrets directory (chroot)" smtp "$ss$SD/\"" list "$SD"
    expect_denied "smtp's profile cannot read a secrets file (/etc/tokens)" smtp "$ss$TOKDIR/secrets/$SPLIT_PROBE\"" read "$TOKDIR/secrets/$SPLIT_PROBE"
    expect_denied "smtp's profile cannot read the client_secret_file" smtp "$ss$CS\"" read "$CS"
    ;;
esac
# expect_allowed DESC WHO OP ARGS...: the probe succeeds and the kernel logs
# no denial for our domains, profiles or types.
expect_allowed() {
  local desc=$1 who=$2 out rc d
  shift 2
  mark
  out=$(probe "$who" "$@")
  rc=$?
  sleep 0.2
  d=$(denials | grep -E "$OURS")
  printf '$ probe %s %s -> %s (exit %s)\n%s\n' "$who" "$*" "$out" "$rc" "$d" >&9
  [ $rc -eq 0 ] && [ -z "$d" ]
  tap $? "$desc" "probe: $out (exit $rc)" "kernel: $d"
}
expect_allowed "the helper's domain/profile can list a secrets directory" helper list "$SD"
expect_allowed "the helper's domain/profile can read a secrets file (chroot)" helper read "$S"
expect_allowed "the helper's domain/profile can read a secrets file (/etc/tokens)" helper read "$TOKDIR/secrets/$SPLIT_PROBE"
expect_allowed "the helper's domain/profile can read the client_secret_file" helper read "$CS"
expect_allowed "the helper's domain/profile can create a temp file in a secrets directory" helper create "$SD/.$SPLIT_PROBE.tmp"
if [ "$MODE" = selinux ]; then
  [ "$(label "$SD/.$SPLIT_PROBE.tmp")" = sasl_xoauth2_secret_t ]
  tap $? "the helper's new file in a secrets directory is sasl_xoauth2_secret_t ($(label "$SD/.$SPLIT_PROBE.tmp"))"
fi
expect_allowed "the helper's domain/profile can rename over a secrets file" helper rename "$SD/.$SPLIT_PROBE.tmp" "$S"
[ -f "$S" ] && [ ! -e "$SD/.$SPLIT_PROBE.tmp" ]
tap $? "the secrets file was replaced by the rename"
expect_allowed "the helper's domain/profile can unlink in a secrets directory" helper unlink "$S"

# ---- delivery in the split layout -------------------------------------------
# Postfix still runs with smtp not chrooted. The delivery account is
# converted (both copies), its access token expired, and the fake Gmail
# rotates refresh tokens from now on: the helper must read the refresh token
# from D/secrets/NAME, write the new one there first, then the token file,
# without a refresh token in it, and without a denial.
mark
info "split layout: converting $USER_ADDR, expiring its access token, rotating refresh tokens"
check "sasl-xoauth2-tool split-secrets $TOKDIR/$USER_ADDR" sasl-xoauth2-tool split-secrets "$TOKDIR/$USER_ADDR"
check "sasl-xoauth2-tool split-secrets $TOKDIR_CHROOT/$USER_ADDR" sasl-xoauth2-tool split-secrets "$TOKDIR_CHROOT/$USER_ADDR"
# expire FILE: expiry "0", rewritten in place (same inode, owner, mode, label).
expire() { local t; t=$(sed 's/"expiry": *"[0-9]*"/"expiry": "0"/' "$1") && printf '%s\n' "$t" >"$1"; }
expire "$TOKDIR/$USER_ADDR" && expire "$TOKDIR_CHROOT/$USER_ADDR"
tap $? "split layout: access tokens expired (expiry 0)"
echo "mode rotating" >&3
wait_for "$G/out" '^ok' 10
tap $? "the fake Gmail rotates refresh tokens now" "$(tail -n 3 "$G/out")"
# split_deliver LABEL TOKEN-DIR
split_deliver() {
  local label=$1 sf=$2/secrets/$USER_ADDR rt_old rt_new
  rt_old=$(field "$sf" refresh_token)
  [ -n "$rt_old" ] && ! grep -qE '"(refresh_token|client_secret)"' "$2/$USER_ADDR"
  tap $? "$label: before: the refresh token is in $sf only"
  deliver "$label" "$2"
  rt_new=$(field "$sf" refresh_token)
  [ -n "$rt_new" ] && [ "$rt_new" != "$rt_old" ]
  tap $? "$label: the rotated refresh token was written to $sf"
  [ "$(stat -c %U:%a "$sf")" = postfix:600 ]
  tap $? "$label: the secrets file is still postfix, mode 0600 ($(stat -c %U:%a "$sf"))"
  ! grep -qE '"(refresh_token|client_secret)"' "$2/$USER_ADDR"
  tap $? "$label: the refreshed token file holds no refresh_token or client_secret" "$(cat "$2/$USER_ADDR" | grep -v access_token)"
  ! ls -A "$2" "$2/secrets" | grep -q '\.tmp-'
  tap $? "$label: no temp file left beside the token or the secrets file" "$(ls -lA "$2" "$2/secrets")"
  if [ "$MODE" = selinux ]; then
    [ "$(label "$sf")" = sasl_xoauth2_secret_t ]
    tap $? "$label: the rewritten secrets file is sasl_xoauth2_secret_t ($(label "$sf"))"
  fi
}
split_deliver "split layout, smtp not chrooted" "$TOKDIR"
# The chroot's copy still holds the refresh token the provider just replaced.
cat "$TOKDIR/secrets/$USER_ADDR" >"$TOKDIR_CHROOT/secrets/$USER_ADDR"
postfix_stop
smtp_chroot y
check "Postfix restarts with smtp chrooted" postfix_start
split_deliver "split layout, chrooted smtp" "$TOKDIR_CHROOT"
d=$(denials)
printf '%s\n' "$d" >"$OUT/$MODE-denials-split.txt"
ours=$(printf '%s\n' "$d" | grep -E "$OURS")
[ -z "$ours" ]
DIAG_LINES=80 tap $? "no $MODE denial for smtp, the helper or the tool in the split layout (split-secrets, delivery x2, rotation)" "$ours"

postfix_stop
exec 3>&-
dmesg >"$OUT/$MODE-dmesg.txt"
cp "$MAILLOG" "$OUT/$MODE-maillog.txt" 2>/dev/null
cp "$G/events.log" "$OUT/$MODE-gmail-events.txt" 2>/dev/null
echo "MAC-END $MODE"
