#!/bin/sh
# prove --exec tests/run-test.sh: shell tests run under bash, C tests as is.
case "$1" in
*.sh) exec bash "$@" ;;
*) exec "$@" ;;
esac
