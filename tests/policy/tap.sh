# Shared by the policy checks (sourced): a private work directory, TAP-style
# ok/not ok lines, and the closing "NAME: N passed, M failed" line.
# The sourcing script sets NAME first.

die() {
	echo "$NAME: FATAL: $*" >&2
	echo "$NAME: 0 passed, 1 failed" >&2
	exit 2
}

# make_workdir: a temp directory in $work, removed on exit unless KEEP_WORKDIR=1.
make_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/check-$NAME.XXXXXX")
	if [[ ${KEEP_WORKDIR:-0} == 1 ]]; then
		echo "# work directory: $work"
	else
		trap 'rm -rf "$work"' EXIT
	fi
}

pass=0
fail=0
ok() {
	pass=$((pass + 1))
	echo "ok - $1"
}
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $1"
	if [[ -n ${2:-} ]]; then
		printf '%s\n' "$2" | sed 's/^/#   /' | head -n 40
	fi
}

summary_and_exit() {
	echo "$NAME: $pass passed, $fail failed"
	((fail == 0)) || exit 1
	exit 0
}
