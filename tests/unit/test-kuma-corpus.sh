#!/usr/bin/env bash
# Kuma's own validation cases (../shared/kuma-corpus beside the source tree,
# not part of it): every verdict must agree with Kuma's. Skipped (77) where
# the corpus or PyYAML is absent; never needed to build or pass.
#   test-kuma-corpus.sh SOURCE_ROOT MESHSPLICE RESULTS_DIR
set -u
src=${1:?source root}; cli=${2:?meshsplice}; out=${3:?results dir}
corpus=$src/../shared/kuma-corpus
if [ ! -f "$corpus/run.sh" ]; then
	echo "SKIP: no $corpus"
	exit 77
fi
if ! python3 -c 'import yaml' 2>/dev/null && ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	echo "SKIP: the corpus needs python3 with PyYAML"
	exit 77
fi
rm -rf "$out"
mkdir -p "$out"
bash "$corpus/run.sh" "$cli" "$out"
