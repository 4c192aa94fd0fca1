#!/usr/bin/env bash
# Kuma's own validation cases, from the directory KUMA_CORPUS_DIR names (a
# copy of Kuma's cases with their runner, not part of this tree): every
# verdict must agree with Kuma's. Skipped (77) where it is unset or absent,
# or PyYAML is missing; never needed to build or pass.
#   KUMA_CORPUS_DIR=DIR test-kuma-corpus.sh MESHSPLICE RESULTS_DIR
set -u
cli=${1:?meshsplice}; out=${2:?results dir}
corpus=${KUMA_CORPUS_DIR:-}
if [ -z "$corpus" ] || [ ! -f "$corpus/run.sh" ]; then
	echo "SKIP: KUMA_CORPUS_DIR ${corpus:+($corpus) }names no corpus"
	exit 77
fi
if ! python3 -c 'import yaml' 2>/dev/null && ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	echo "SKIP: the corpus needs python3 with PyYAML"
	exit 77
fi
rm -rf "$out"
mkdir -p "$out"
bash "$corpus/run.sh" "$cli" "$out"
