#!/usr/bin/env bash
# Run ansible-test (sanity or units) offline on a real copy of the collection.
# usage: tests/tools/ansible_test.sh sanity|units [extra ansible-test args]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
venv=${AGILITY_VENV:-$here/.venv}
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
for v in 24_2 25_3 25_0 24_3; do cp "$here/tests/tools/get_pip_standin.py" "$cache/get_pip_$v.py"; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/agility/addressing
mkdir -p "$dest"
# ansible-test refuses a symlinked collection root: copy what git tracks
(cd "$here" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -P -t "$dest")
cd "$dest"
git init -q && git add -A >/dev/null 2>&1 && git -c user.email=ci@localhost -c user.name=ci commit -qm snapshot
what=$1; shift
exec "$venv/bin/ansible-test" "$what" --venv --python 3.11 --color no "$@"
