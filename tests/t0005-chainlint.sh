#!/bin/bash
# The chain-lint refuses test bodies whose &&-chain is broken, before they
# run, and lets the ordinary shapes of a test body through.
. "$(dirname "$0")/test-lib.sh"

lint() { awk -f "$TEST_DIR/chainlint.awk"; }

# refused BODY-FILE LINE: the lint names that line of the body
refused() {
	test_expect_code 1 lint <"$1" >out &&
	test_grep "^line $2: " out
}

test_expect_success 'a missing && between two commands is refused' '
	printf "\tfalse\n\ttrue\n" >body &&
	refused body 1 &&
	printf "\ttrue &&\n\tfalse;\n\ttrue\n" >body &&
	refused body 2
'

test_expect_success 'inside loops, subshells, groups and functions too' '
	printf "\tfor i in 1 2; do\n\t\tfalse\n\t\ttrue || return 1\n\tdone\n" >body &&
	refused body 2 &&
	printf "\t(\n\t\tcd x\n\t\ttrue\n\t) &&\n\ttrue\n" >body &&
	refused body 2 &&
	printf "\tf() {\n\t\tlocal x=1\n\t\techo \$x\n\t} &&\n\tf\n" >body &&
	refused body 2
'

test_expect_success 'two commands joined by a bare ; are refused' '
	printf "\ttrue && false; true &&\n\ttrue\n" >body &&
	refused body 1
'

test_expect_success 'a chain put in the background whole is refused' '
	printf "\ttrue &&\n\tsleep 1 &\n\tpid=\$! &&\n\twait \$pid\n" >body &&
	refused body 2 &&
	printf "\ttrue && sleep 1 &\n\twait\n" >body &&
	refused body 1 &&
	printf "\ttrue &&\n\t(\n\t\tsleep 1\n\t) &\n\twait\n" >body &&
	refused body 4
'

test_expect_success 'the ordinary shapes of a body pass' '
	cat >body <<-\EOF &&
		# a comment; with a semicolon
		sleep 2 >/dev/null 2>&1 &
		other=$! &&
		cat >f <<-\END &&
		no && here; nor here
		END
		{ sleep 1 & } &&
		pid=$! &&
		x="a string
		over lines; with ; in it" &&
		y=$(echo "$(echo "b; c")") &&
		case $x in
		a*)
			true
			;;
		b|c) false ;;
		*)
			true ;;
		esac &&
		if test -n "$x"; then
			true
		elif false
		then
			false
		else
			true
		fi &&
		for i in 1 2; do
			test $i -gt 0 || return 1
		done &&
		while false; do :; done &&
		test_must_fail false ||
			return 1
		{ a; b; } >out &&
		{ wait $pid || :; } &&
		echo done
	EOF
	lint <body >out &&
	test_must_fail test -s out
'

test_expect_success 'test_expect_success refuses a broken body and runs none of it' '
	mkdir lib &&
	cp "$TEST_DIR/test-lib.sh" "$TEST_DIR/chainlint.awk" lib/ &&
	cat >lib/broken.sh <<-EOF &&
		. "\$(dirname "\$0")/test-lib.sh"
		test_expect_success "broken" "
			true
			touch \"$TRASH/ran\"
		"
		test_done
	EOF
	TMPDIR=$TRASH test_expect_code 1 bash lib/broken.sh >out 2>err &&
	test_grep "^not ok 1 - broken" out &&
	test_grep "broken &&-chain" out &&
	test_grep "line 2: " out &&
	test_must_fail test -e ran
'

test_done
