#!/usr/bin/env bash
# Builds the callsbench load-agent image locally (no registry): static `callsbench` and `callsref`
# binaries plus scenarios/media in an image FROM scratch (deploy/agent/Dockerfile).
#
# Usage: deploy/agent/build-image.sh [--tag callsbench/agent:dev] [--release]
# The binaries are linked statically against musl when the x86_64-unknown-linux-musl target is
# installed (`rustup target add x86_64-unknown-linux-musl`), else against glibc with crt-static.
# Load the image into a cluster with `kind load docker-image`, `minikube image load`, or
# `docker save | ssh node ctr -n k8s.io images import -` (deploy/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=callsbench/agent:dev
profile=dev
while (($#)); do
    case "$1" in
        --tag) tag=$2; shift 2 ;;
        --release) profile=release; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
    flags=""
else
    target=x86_64-unknown-linux-gnu
    flags="-C target-feature=+crt-static"
fi
outdir=debug
[[ $profile == release ]] && outdir=release

echo "building static callsbench and callsref for $target ($profile)" >&2
# No debug info: the binaries only have to run in the container.
CARGO_PROFILE_DEV_DEBUG=0 RUSTFLAGS="$flags" \
    cargo build --quiet -p callsbench --bin callsbench -p callsref --bin callsref \
    --target "$target" --profile "$profile"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
for bin in callsbench callsref; do
    path="target/$target/$outdir/$bin"
    if ! ldd "$path" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
        echo "build-image.sh: $path is not static" >&2
        exit 1
    fi
    cp "$path" "$ctx/$bin"
done
cp -r scenarios/media "$ctx/media"
mkdir -m 1777 "$ctx/tmp"
cp deploy/agent/Dockerfile "$ctx/Dockerfile"
docker build --quiet -t "$tag" "$ctx" >/dev/null
echo "$tag"
